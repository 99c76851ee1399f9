//! Request bodies made on a thread of their own: what a blocking reader
//! gives, or what a producer writes (a tar being built), sent as a stream
//! of chunks.

use std::io::{Read, Write};

use bytes::Bytes;

/// A request body's chunks.
pub type ChunkStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = Bytes> + Send>>;

/// How much goes in one body chunk: a pipe's 64 KiB made hundreds of hops
/// for a 20 MB build context.
const CHUNK: usize = 1 << 20;

/// The producer's end: whole chunks to the request body.
pub struct Chunks {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the request ended"))
    }
}

fn receiver_stream(rx: tokio::sync::mpsc::Receiver<Bytes>) -> ChunkStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (b, rx))
    }))
}

/// What `produce` writes, as a body; a failure is reported with `what`
/// and ends the body early (the daemon sees a truncated upload).
pub fn written_stream<F>(what: &'static str, produce: F) -> ChunkStream
where
    F: FnOnce(&mut Chunks) -> anyhow::Result<()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    std::thread::spawn(move || {
        let mut writer = Chunks {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let done = produce(&mut writer).and_then(|()| writer.flush().map_err(Into::into));
        if let Err(e) = done {
            eprintln!("berth: {what}: {e:#}");
        }
    });
    receiver_stream(rx)
}

/// A blocking reader as a body (read on a thread of its own).
pub fn reader_stream(mut reader: Box<dyn Read + Send>) -> ChunkStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 << 10];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                break;
            }
        }
    });
    receiver_stream(rx)
}

/// A response body as a blocking reader: the body's chunks (often a few
/// KiB) are gathered into 1 MiB batches on the runtime, so the reading
/// thread hands off once per batch, not once per chunk (a futex each).
pub fn batched_reader<S, E>(mut body: S) -> impl Read + Send + 'static
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    use futures_util::StreamExt;
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(CHUNK);
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => batch.extend_from_slice(&c),
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            }
            if batch.len() >= CHUNK {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(CHUNK));
                let tx = tx.clone();
                // The channel is bounded: wait for room off the runtime.
                if tokio::task::spawn_blocking(move || tx.send(Ok(full)))
                    .await
                    .map_or(true, |r| r.is_err())
                {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tokio::task::spawn_blocking(move || tx.send(Ok(batch))).await;
        }
    });
    BatchReader {
        rx,
        current: Vec::new(),
        at: 0,
    }
}

struct BatchReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for BatchReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.rx.recv() {
                Ok(batch) => {
                    self.current = batch?;
                    self.at = 0;
                }
                Err(_) => return Ok(0), // the body ended
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
