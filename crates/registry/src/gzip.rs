//! Gzip on every core, as pigz does: the input is cut into blocks deflated
//! side by side, each primed with the 32 KiB of input before it (so the
//! ratio stays the serial one's, nearly) and ended by a sync flush, so the
//! blocks join into one deflate stream; their CRCs are combined. The
//! output depends on the input and the level only, never on the number of
//! threads: a layer pushed twice gets the same digest, and the registry's
//! copy is found (HEAD) instead of uploaded again.

use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Input deflated by one thread at a time.
const BLOCK: usize = 1 << 20;
/// Deflate's window: the history a block is primed with.
const WINDOW: usize = 32 << 10;
/// The unit judged compressible or not.
const CHUNK: usize = 64 << 10;
/// Blocks handed to the workers at a time, per worker.
const BATCH_PER_THREAD: usize = 2;
/// The most threads one compression deflates on: a push compresses
/// several layers at once, and each batch in flight is held in memory
/// (about four batches per compression: 64 MiB at this cap).
pub const MAX_THREADS: usize = 8;
/// Bits of entropy per byte above which a block is stored: random bytes
/// reach 7.999, compressed formats 7.99; text and code stay below 6.
const ENTROPY_STORED: f64 = 7.97;

/// A batch of input blocks, and whether the input ends with it.
type Batch = (Vec<Vec<u8>>, bool);

/// Writes the gzip of everything `input` holds to `out`, deflating
/// `threads` blocks at once. Reading (and whatever hashing the reader
/// does) and writing run on threads of their own, beside the deflating:
/// the next batch is read and the last one written meanwhile.
pub fn compress(
    input: &mut (dyn Read + Send),
    out: &mut (dyn Write + Send),
    level: Compression,
    threads: usize,
) -> io::Result<()> {
    let threads = threads.clamp(1, MAX_THREADS);
    let per_batch = threads * BATCH_PER_THREAD;
    std::thread::scope(|s| {
        let (batches, from_reader) = sync_channel::<io::Result<Batch>>(1);
        let (to_writer, deflated) = sync_channel::<Vec<u8>>(per_batch);
        let reader = s.spawn(move || read_batches(input, per_batch, &batches));
        let writer = s.spawn(move || -> io::Result<()> {
            out.write_all(&header(level))?;
            for bytes in deflated {
                out.write_all(&bytes)?;
            }
            Ok(())
        });
        let deflating = deflate_all(&from_reader, &to_writer, level, threads);
        // Whatever stopped first says why: a writer that failed has
        // dropped its end, and the deflating stopped on it.
        drop((from_reader, to_writer));
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the gzip writer panicked")));
        let _ = reader.join();
        written.and(deflating)
    })
}

/// Reads blocks into batches until the input ends (a block is final only
/// when nothing follows it, so one block is read ahead).
fn read_batches(
    input: &mut (dyn Read + Send),
    per_batch: usize,
    batches: &SyncSender<io::Result<Batch>>,
) {
    let mut read = || -> io::Result<()> {
        let mut next = read_block(input)?;
        loop {
            let mut batch = vec![next];
            next = read_block(input)?;
            while batch.len() < per_batch && !next.is_empty() {
                batch.push(next);
                next = read_block(input)?;
            }
            let last = next.is_empty();
            if batches.send(Ok((batch, last))).is_err() || last {
                return Ok(());
            }
        }
    };
    if let Err(e) = read() {
        let _ = batches.send(Err(e));
    }
}

/// Deflates each batch as it comes, hands the bytes on in order, then the
/// trailer: the CRC-32 and the length modulo 2^32 (RFC 1952).
fn deflate_all(
    batches: &Receiver<io::Result<Batch>>,
    out: &SyncSender<Vec<u8>>,
    level: Compression,
    threads: usize,
) -> io::Result<()> {
    let gone = || io::Error::other("the gzip writer stopped");
    let mut crc = crc32fast::Hasher::new();
    let mut history: Vec<u8> = Vec::new();
    loop {
        let (batch, last) = batches
            .recv()
            .map_err(|_| io::Error::other("the gzip reader stopped"))??;
        for (bytes, block_crc) in deflate_batch(&batch, &history, last, level, threads)? {
            out.send(bytes).map_err(|_| gone())?;
            crc.combine(&block_crc);
        }
        if last {
            break;
        }
        history = tail(batch.last().map_or(&[][..], Vec::as_slice)).to_vec();
    }
    let mut trailer = crc.clone().finalize().to_le_bytes().to_vec();
    trailer.extend_from_slice(&crc.total_len().to_le_bytes()[..4]);
    out.send(trailer).map_err(|_| gone())
}

/// The gzip member header: no name, no time, OS unknown (as Go and
/// flate2 write it), the extra flags saying how hard it was compressed.
fn header(level: Compression) -> [u8; 10] {
    let xfl = match level.level() {
        1 => 4,
        9 => 2,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Up to `BLOCK` bytes (fewer only at the end of the input).
fn read_block(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK);
    input.take(BLOCK as u64).read_to_end(&mut block)?;
    Ok(block)
}

fn tail(block: &[u8]) -> &[u8] {
    &block[block.len().saturating_sub(WINDOW)..]
}

/// The blocks of a batch deflated by `threads` workers, each taking the
/// next block not yet taken (blocks take unequal times); each block
/// primed with the one before.
fn deflate_batch(
    batch: &[Vec<u8>],
    history: &[u8],
    last: bool,
    level: Compression,
    threads: usize,
) -> io::Result<Vec<(Vec<u8>, crc32fast::Hasher)>> {
    type Deflated = io::Result<(Vec<u8>, crc32fast::Hasher)>;
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Deflated>>> = batch.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.clamp(1, batch.len().max(1)))
            .map(|_| {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(block) = batch.get(i) else { break };
                    let dict = if i == 0 { history } else { tail(&batch[i - 1]) };
                    let is_last = last && i + 1 == batch.len();
                    let mut crc = crc32fast::Hasher::new();
                    crc.update(block);
                    let r = deflate_block(block, dict, is_last, level).map(|d| (d, crc));
                    *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
                })
            })
            .collect();
        // Joined here, so a worker's panic leaves its block without a
        // result (an error below) instead of unwinding through the scope.
        for w in workers {
            let _ = w.join();
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .unwrap_or_else(|| Err(io::Error::other("a compression thread panicked")))
        })
        .collect()
}

/// Whether a chunk looks already compressed (its bytes nearly uniformly
/// spread): deflate would search it for matches at length, to gain
/// nothing, so it is stored as it is.
fn incompressible(block: &[u8]) -> bool {
    if block.len() < CHUNK / 2 {
        return false;
    }
    let mut counts = [0u64; 256];
    for &b in block {
        counts[usize::from(b)] += 1;
    }
    let n = block.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    entropy > ENTROPY_STORED
}

/// Raw deflate of one block: ended by a sync flush (byte-aligned, so the
/// next block's output can follow), or finished when it is the last. Runs
/// of chunks that look compressed already are stored, the rest deflated,
/// each run primed with the input before it.
fn deflate_block(block: &[u8], dict: &[u8], last: bool, level: Compression) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(block.len() + block.len() / 8 + 64);
    let runs = runs(block);
    for (k, (range, stored)) in runs.iter().enumerate() {
        let primer = if range.start == 0 {
            dict
        } else {
            tail(&block[..range.start])
        };
        let run_level = if *stored { Compression::none() } else { level };
        let is_last = last && k + 1 == runs.len();
        deflate_run(&block[range.clone()], primer, is_last, run_level, &mut out)?;
    }
    Ok(out)
}

/// The block cut into runs of `CHUNK`s alike: (range, stored or not).
fn runs(block: &[u8]) -> Vec<(Range<usize>, bool)> {
    let mut runs: Vec<(Range<usize>, bool)> = Vec::new();
    for (i, chunk) in block.chunks(CHUNK).enumerate() {
        let range = i * CHUNK..i * CHUNK + chunk.len();
        let stored = incompressible(chunk);
        match runs.last_mut() {
            Some((r, s)) if *s == stored => r.end = range.end,
            _ => runs.push((range, stored)),
        }
    }
    if runs.is_empty() {
        runs.push((0..0, false)); // an empty input still ends the stream
    }
    runs
}

fn deflate_run(
    input: &[u8],
    dict: &[u8],
    last: bool,
    level: Compression,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut c = Compress::new(level, false);
    if !dict.is_empty() && level.level() > 0 {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        if out.len() == out.capacity() {
            out.reserve(64 << 10);
        }
        // total_in never exceeds the run's length, a usize.
        let consumed = usize::try_from(c.total_in()).unwrap_or(input.len());
        let status = c
            .compress_vec(&input[consumed..], out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() == input.len() as u64;
        match status {
            Status::StreamEnd => return Ok(()),
            // A sync flush is complete once it leaves output space unused.
            _ if !last && all_in && out.len() < out.capacity() => return Ok(()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        compress(&mut &data[..], &mut out, Compression::fast(), threads).unwrap();
        out
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Text-like bytes with some incompressible stretches.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 7;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if (i / 100_000) % 3 == 2 {
                    x.to_le_bytes()[2]
                } else {
                    b"lorem ipsum dolor sit amet "[(x >> 16) as usize % 27]
                }
            })
            .collect()
    }

    #[test]
    fn round_trips_at_every_size_around_the_block_boundaries() {
        for len in [0, 1, WINDOW, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            let data = sample(len);
            assert_eq!(gunzip(&gzip(&data, 4)), data, "{len} bytes");
        }
    }

    #[test]
    fn the_output_does_not_depend_on_the_thread_count() {
        let data = sample(5 * BLOCK + 3);
        let one = gzip(&data, 1);
        assert_eq!(gzip(&data, 2), one);
        assert_eq!(gzip(&data, 8), one);
    }

    #[test]
    fn priming_keeps_the_serial_ratio() {
        let data = sample(4 * BLOCK);
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        serial.write_all(&data).unwrap();
        let serial = serial.finish().unwrap().len() as f64;
        let parallel = gzip(&data, 4).len() as f64;
        assert!(parallel < serial * 1.01, "{parallel} vs {serial}");
    }

    #[test]
    fn random_blocks_are_stored_and_still_round_trip() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..3 * BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[3]
            })
            .collect();
        let gz = gzip(&data, 2);
        // Stored blocks cost 5 bytes per 64 KiB; level 1 would grow it 5%.
        assert!(
            gz.len() < data.len() + data.len() / 1000 + 64,
            "{}",
            gz.len()
        );
        assert_eq!(gunzip(&gz), data);
        assert!(!incompressible(&sample(BLOCK)));
    }

    /// Gives `left` bytes, then fails.
    struct Failing {
        left: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.left);
            buf[..n].fill(b'x');
            self.left -= n;
            Ok(n)
        }
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left < buf.len() {
                return Err(io::Error::other("disk full"));
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_reader_or_writer_fails_the_compression() {
        let mut out = Vec::new();
        let mut input = Failing { left: 20 * BLOCK };
        let e = compress(&mut input, &mut out, Compression::fast(), 2).unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
        let data = sample(20 * BLOCK);
        let mut out = Failing { left: 1000 };
        let e = compress(&mut &data[..], &mut out, Compression::fast(), 2).unwrap_err();
        assert_eq!(e.to_string(), "disk full");
    }

    #[test]
    fn gnu_gzip_reads_it() {
        let data = sample(3 * BLOCK + 1);
        let mut child = std::process::Command::new("gzip")
            .args(["-dc"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let gz = gzip(&data, 2);
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&gz).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success());
        assert!(out.stdout == data, "gzip -dc gave other bytes");
    }

    #[test]
    fn the_trailer_holds_the_crc_and_length() {
        let data = sample(2 * BLOCK + 5);
        let gz = gzip(&data, 3);
        let trailer = &gz[gz.len() - 8..];
        assert_eq!(trailer[..4], crc32fast::hash(&data).to_le_bytes());
        assert_eq!(trailer[4..], data.len().to_le_bytes()[..4]);
    }
}
