//! `GET /containers/{id}/logs` from the json-file log: stream selection,
//! tail, since/until, timestamps, follow; written in Docker's multiplexed
//! frame format (8-byte header: stream, 0, 0, 0, big-endian length), or
//! raw for a container with a TTY.

use std::io::{BufRead, BufReader, Seek, Write};
use std::time::Duration;

use super::model::Status;
use super::ContainerService;
use crate::error::{EngineError, ErrorKind, Result};

/// What the client asked for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// Last N lines; `None` = all.
    pub tail: Option<usize>,
    /// Unix seconds (fractions allowed).
    pub since: Option<f64>,
    pub until: Option<f64>,
}

/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

struct Entry {
    stream: u8,
    text: String,
    time: String,
    unix: f64,
}

fn parse(line: &str) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let time = v["time"].as_str()?.to_owned();
    let unix = chrono::DateTime::parse_from_rfc3339(&time)
        .ok()
        .map_or(0.0, |t| t.timestamp_micros() as f64 / 1e6);
    let stream = if v["stream"] == "stderr" { 2 } else { 1 };
    Some(Entry {
        stream,
        text: v["log"].as_str()?.to_owned(),
        time,
        unix,
    })
}

impl ContainerService {
    /// Writes the container's logs to `out` as multiplexed frames.
    pub fn logs(&self, name: &str, opts: &LogOptions, out: &mut dyn Write) -> Result<()> {
        let rec = self.find(name)?;
        let path = self.log_path(&rec.id);
        let io = |e: std::io::Error| {
            EngineError::new(ErrorKind::Internal, format!("reading the log: {e}"))
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        let mut reader = BufReader::new(file);
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).map_err(io)? > 0 {
            if line.ends_with('\n') {
                lines.push(std::mem::take(&mut line));
            }
        }
        let skip = opts.tail.map_or(0, |n| lines.len().saturating_sub(n));
        let tty = rec.request.tty;
        for l in &lines[skip..] {
            write_entry(out, l, opts, tty).map_err(io)?;
        }
        if !opts.follow {
            return Ok(());
        }
        let mut pos = reader.stream_position().map_err(io)? - line.len() as u64;
        loop {
            let running = self
                .find(&rec.id)
                .is_ok_and(|r| r.state.status == Status::Running);
            reader.seek(std::io::SeekFrom::Start(pos)).map_err(io)?;
            let mut got = false;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).map_err(io)? == 0 || !l.ends_with('\n') {
                    break;
                }
                pos += l.len() as u64;
                got = true;
                write_entry(out, &l, opts, tty).map_err(io)?;
            }
            out.flush().map_err(io)?;
            if !running && !got {
                return Ok(());
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// One entry: a multiplexed frame, or the text alone for a container with
/// a TTY (its output is one stream, as Docker writes it).
fn write_entry(
    out: &mut dyn Write,
    line: &str,
    opts: &LogOptions,
    tty: bool,
) -> std::io::Result<()> {
    let Some(e) = parse(line) else { return Ok(()) };
    let wanted = (e.stream == 1 && opts.stdout) || (e.stream == 2 && opts.stderr);
    let in_time = opts.since.is_none_or(|s| e.unix >= s) && opts.until.is_none_or(|u| e.unix <= u);
    if !wanted || !in_time {
        return Ok(());
    }
    let payload = if opts.timestamps {
        format!("{} {}", e.time, e.text)
    } else {
        e.text
    };
    if tty {
        return out.write_all(payload.as_bytes());
    }
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut header = [e.stream, 0, 0, 0, 0, 0, 0, 0];
    header[4..].copy_from_slice(&len.to_be_bytes());
    out.write_all(&header)?;
    out.write_all(payload.as_bytes())
}
