//! Docker's detach keys (Ctrl-P, Ctrl-Q) on an attached stdin: the client
//! lets go and the container keeps running. A partial sequence that breaks
//! is passed on as typed, as docker's escape proxy does.

/// Ctrl-P, Ctrl-Q.
const KEYS: [u8; 2] = [0x10, 0x11];

/// Scans input for the sequence across reads.
#[derive(Debug, Default)]
pub struct Escape {
    matched: usize,
}

impl Escape {
    /// Appends what `input` forwards to `out`; true when the sequence
    /// completed (what follows it is not forwarded).
    pub fn scan(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == KEYS[self.matched] {
                self.matched += 1;
                if self.matched == KEYS.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&KEYS[..self.matched]);
            self.matched = usize::from(b == KEYS[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_detaches_and_broken_ones_pass_through() {
        let mut e = Escape::default();
        let mut out = Vec::new();
        assert!(!e.scan(b"ab\x10", &mut out));
        assert_eq!(out, b"ab", "a possible start is held back");
        assert!(!e.scan(b"c\x10\x10", &mut out));
        assert_eq!(out, b"ab\x10c\x10", "a broken start is passed on");
        assert!(e.scan(b"\x11never", &mut out));
        assert_eq!(out, b"ab\x10c\x10");
    }
}
