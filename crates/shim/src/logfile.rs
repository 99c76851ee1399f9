//! Docker's json-file log format: one JSON object per line of output,
//! `{"log":"text\n","stream":"stdout","time":"RFC 3339 nanos"}`. Output is
//! split at newlines; a line longer than 16 KiB is written in pieces
//! without the newline, as Docker does.

use std::fs::File;
use std::io::{self, Write};

/// Longest piece of one line written as one entry.
const MAX_ENTRY: usize = 16 << 10;

/// Which of the container's streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// An append-only json-file log.
#[derive(Debug)]
pub struct JsonLog {
    file: File,
    partial: [Vec<u8>; 2],
}

impl JsonLog {
    /// Appends to `file`.
    pub fn new(file: File) -> Self {
        Self {
            file,
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// Logs a chunk of output.
    pub fn write(&mut self, stream: Stream, mut bytes: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        while let Some(pos) = bytes.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[idx]);
            line.extend_from_slice(&bytes[..=pos]);
            self.entry(stream, &line)?;
            bytes = &bytes[pos + 1..];
        }
        self.partial[idx].extend_from_slice(bytes);
        while self.partial[idx].len() >= MAX_ENTRY {
            let rest = self.partial[idx].split_off(MAX_ENTRY);
            let piece = std::mem::replace(&mut self.partial[idx], rest);
            self.entry(stream, &piece)?;
        }
        Ok(())
    }

    /// Writes what is left of unfinished lines (at exit).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let piece = std::mem::take(&mut self.partial[stream as usize]);
            if !piece.is_empty() {
                self.entry(stream, &piece)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: Stream, text: &[u8]) -> io::Result<()> {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(text),
            "stream": stream.name(),
            "time": time,
        });
        let mut line = entry.to_string().into_bytes();
        line.push(b'\n');
        // One write per entry: a reader never sees half a line.
        self.file.write_all(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn output_is_split_into_lines_per_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut log = JsonLog::new(File::create(&path).unwrap());
        log.write(Stream::Stdout, b"hel").unwrap();
        log.write(Stream::Stderr, b"oops\n").unwrap();
        log.write(Stream::Stdout, b"lo\nworld\nta").unwrap();
        log.flush_partial().unwrap();
        let e = entries(&path);
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|v| (v["stream"].as_str().unwrap(), v["log"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("stderr", "oops\n"),
                ("stdout", "hello\n"),
                ("stdout", "world\n"),
                ("stdout", "ta")
            ]
        );
        assert!(e[0]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut log = JsonLog::new(File::create(&path).unwrap());
        log.write(Stream::Stdout, &vec![b'x'; 40 << 10]).unwrap();
        log.write(Stream::Stdout, b"\n").unwrap();
        let sizes: Vec<usize> = entries(&path)
            .iter()
            .map(|v| v["log"].as_str().unwrap().len())
            .collect();
        assert_eq!(sizes, [16 << 10, 16 << 10, (8 << 10) + 1]);
    }
}
