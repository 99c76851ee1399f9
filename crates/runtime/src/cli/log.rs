//! runc-style logging: `--log FILE` and `--log-format text|json`. JSON lines
//! are `{"level":"error","msg":"…","time":"RFC 3339"}`, the shape containerd
//! reads back from a runtime's log after a failure.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

use super::args::LogFormat;

/// Where log lines go.
#[derive(Debug, Clone)]
pub struct Sink {
    file: Option<Arc<File>>,
    format: LogFormat,
}

impl Sink {
    /// Opens the log destination and installs the global subscriber.
    pub fn install(path: Option<&Path>, format: LogFormat, debug: bool) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => Some(Arc::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            )),
            None => None,
        };
        let level = if debug { Level::DEBUG } else { Level::WARN };
        // libcgroups warns about every controller this kernel lacks, on every
        // call: that is noise for a runtime's log unless debugging.
        let quiet = if debug { Level::DEBUG } else { Level::ERROR };
        let filter = Targets::new()
            .with_default(level)
            .with_target("libcgroups", quiet);
        let builder = tracing_subscriber::fmt()
            .with_max_level(level)
            .event_format(LineFormat { format });
        // A second install (tests calling main twice) keeps the first.
        let _ = match &file {
            Some(file) => tracing::subscriber::set_global_default(
                builder.with_writer(Arc::clone(file)).finish().with(filter),
            ),
            None => tracing::subscriber::set_global_default(
                builder.with_writer(std::io::stderr).finish().with(filter),
            ),
        };
        Ok(Self { file, format })
    }

    /// Reports a fatal error: in the log (as runc does) and, when the log is
    /// a file, also on stderr for the person at the terminal.
    pub fn fatal(&self, message: &str) {
        let line = render(self.format, Level::ERROR, message);
        match &self.file {
            Some(file) => {
                let _ = (&**file).write_all(line.as_bytes());
                eprintln!("berth runtime: {message}");
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

struct LineFormat {
    format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        writer.write_str(&render(
            self.format,
            *event.metadata().level(),
            &fields.text(),
        ))
    }
}

/// One log line, newline-terminated.
fn render(format: LogFormat, level: Level, message: &str) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let level = level.as_str().to_ascii_lowercase();
    match format {
        LogFormat::Json => {
            let line = serde_json::json!({ "level": level, "msg": message, "time": time });
            format!("{line}\n")
        }
        LogFormat::Text => format!("time=\"{time}\" level={level} msg={message:?}\n"),
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Fields {
    fn text(&self) -> String {
        if self.rest.is_empty() {
            self.message.clone()
        } else {
            format!("{}{}", self.message, self.rest)
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_runcs_keys() {
        let line = render(LogFormat::Json, Level::ERROR, "container x does not exist");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container x does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = render(LogFormat::Text, Level::WARN, "a \"b\"");
        assert!(
            line.contains("level=warn") && line.contains(r#"msg="a \"b\"""#),
            "{line}"
        );
    }
}
