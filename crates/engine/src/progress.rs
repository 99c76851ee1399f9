//! Docker's JSON progress streams (pull, push): lines handed from the
//! worker thread to the HTTP response as they come. A failure before the
//! first line fails the request itself (with its status); a later one
//! ends the stream with an `errorDetail` line, as dockerd does.

use std::collections::HashMap;
use std::io::Write;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Value};

use crate::error::Result;

/// An operation under way: its progress lines, then its end.
#[derive(Debug)]
pub struct ProgressStream {
    lines: mpsc::Receiver<Value>,
}

impl ProgressStream {
    /// The progress lines, as they come.
    pub fn lines(self) -> mpsc::IntoIter<Value> {
        self.lines.into_iter()
    }

    /// Writes every progress line as it comes.
    pub fn write_to(self, out: &mut dyn Write) -> std::io::Result<()> {
        for line in self.lines {
            let mut text = line.to_string();
            text.push('\n');
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        Ok(())
    }
}

/// The worker's end of a stream.
pub(crate) struct Lines {
    tx: Mutex<mpsc::Sender<Value>>,
    /// Told once: the stream has begun (`Ok`), or the work failed first.
    outcome: Mutex<Option<mpsc::Sender<Result<()>>>>,
    /// Bytes last reported per layer.
    last: Mutex<HashMap<String, u64>>,
}

impl Lines {
    /// Runs `work` on a thread of its own with the sending end; returns
    /// the stream once the first line is sent, or the error that came
    /// before any.
    pub(crate) fn spawn(
        work: impl FnOnce(&Lines) -> Result<()> + Send + 'static,
    ) -> Result<ProgressStream> {
        let (tx, rx) = mpsc::channel();
        let (outcome_tx, outcome_rx) = mpsc::channel();
        let lines = Lines {
            tx: Mutex::new(tx),
            outcome: Mutex::new(Some(outcome_tx)),
            last: Mutex::new(HashMap::new()),
        };
        std::thread::spawn(move || {
            if let Err(e) = work(&lines) {
                lines.fail(e);
            }
        });
        match outcome_rx.recv() {
            Ok(Err(e)) => Err(e),
            _ => Ok(ProgressStream { lines: rx }),
        }
    }

    pub(crate) fn send(&self, v: Value) {
        if let Some(o) = self
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = o.send(Ok(()));
        }
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(v);
    }

    fn fail(&self, e: crate::error::EngineError) {
        let early = self
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match early {
            Some(o) => {
                let _ = o.send(Err(e));
            }
            None => {
                let m = e.message;
                self.send(json!({ "errorDetail": { "message": m }, "error": m }));
            }
        }
    }

    /// `{"status": …, "progressDetail": {}, "id": …}`.
    pub(crate) fn status(&self, id: &str, status: &str) {
        self.send(json!({ "status": status, "progressDetail": {}, "id": id }));
    }

    /// A layer's bytes, sent a hundred times at most (and at the end).
    pub(crate) fn bytes(&self, id: &str, status: &str, current: u64, total: u64) {
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let prev = last.get(id).copied().unwrap_or(0);
            if current < total && current.saturating_sub(prev) < (total / 100).max(256 << 10) {
                return;
            }
            last.insert(id.to_owned(), current);
        }
        self.send(json!({
            "status": status,
            "progressDetail": { "current": current, "total": total },
            "progress": bar(current, total),
            "id": id,
        }));
    }
}

/// Docker's progress bar: `[====>     ] 1.2MB/3.4MB`.
fn bar(current: u64, total: u64) -> String {
    const WIDTH: usize = 50;
    let done = (current.min(total) * WIDTH as u64)
        .checked_div(total)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(0);
    let body = match done {
        0 => " ".repeat(WIDTH),
        d if d >= WIDTH => "=".repeat(WIDTH),
        d => format!("{}>{}", "=".repeat(d - 1), " ".repeat(WIDTH - d)),
    };
    format!("[{body}] {}/{}", human(current), human(total))
}

/// Sizes as Docker's progress shows them (decimal units).
fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_as_dockers_do() {
        assert_eq!(bar(0, 0), format!("[{}] 0B/0B", " ".repeat(50)));
        assert_eq!(
            bar(500, 1000),
            format!("[{}>{}] 500B/1.000kB", "=".repeat(24), " ".repeat(25))
        );
        assert_eq!(
            bar(2_500_000, 2_500_000),
            format!("[{}] 2.500MB/2.500MB", "=".repeat(50))
        );
    }
}
