//! Docker's progress display of pulls and pushes: on a terminal, one live
//! line per layer (indicatif bars under one `MultiProgress`); otherwise
//! one printed line per status change, as docker prints it.

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The display.
#[derive(Debug)]
pub struct View {
    tty: bool,
    multi: MultiProgress,
    /// Each layer's line, in the order they appeared.
    bars: Vec<(String, ProgressBar)>,
    /// The last status printed for each layer (no repeats off a terminal).
    last: HashMap<String, String>,
}

impl Default for View {
    fn default() -> Self {
        Self::new(std::io::stdout().is_terminal())
    }
}

/// A layer's line while bytes move: `id: Downloading [==>   ] 1.2MB/3.4MB`.
fn moving() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg} [{bar:50}] {bytes}/{total_bytes}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A layer's line otherwise: `id: Pull complete`.
fn still() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl View {
    pub fn new(tty: bool) -> Self {
        let target = if tty {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            tty,
            multi: MultiProgress::with_draw_target(target),
            bars: Vec::new(),
            last: HashMap::new(),
        }
    }

    /// One message: a layer's (with `id`) or the whole operation's.
    pub fn show(&mut self, id: Option<&str>, status: &str, progress: Option<(i64, i64)>) {
        let Some(id) = id.filter(|i| !i.is_empty()) else {
            self.println(status);
            return;
        };
        if !self.tty {
            // Off a terminal, byte counts would be noise: status changes only.
            if self.last.get(id).map(String::as_str) != Some(status) {
                self.last.insert(id.to_owned(), status.to_owned());
                println!("{id}: {status}");
            }
            return;
        }
        let bar = match self.bars.iter().position(|(i, _)| i == id) {
            Some(i) => &self.bars[i].1,
            None => {
                let b = self.multi.add(ProgressBar::new(0).with_style(still()));
                b.set_prefix(id.to_owned());
                self.bars.push((id.to_owned(), b));
                &self.bars[self.bars.len() - 1].1
            }
        };
        match progress.and_then(|(c, t)| Some((u64::try_from(c).ok()?, u64::try_from(t).ok()?))) {
            Some((current, total)) if total > 0 => {
                bar.set_style(moving());
                bar.set_length(total);
                bar.set_position(current.min(total));
            }
            _ => bar.set_style(still()),
        }
        bar.set_message(status.to_owned());
    }

    /// A line of the whole operation's, below the layers' lines so far
    /// (which stay as they are, as docker's do).
    fn println(&mut self, text: &str) {
        for (_, bar) in self.bars.drain(..) {
            bar.abandon();
        }
        println!("{text}");
    }
}

impl Drop for View {
    /// The layers' last lines stay on the screen.
    fn drop(&mut self) {
        for (_, bar) in &self.bars {
            bar.abandon();
        }
    }
}
