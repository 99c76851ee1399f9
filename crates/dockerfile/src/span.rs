//! Pieces of an instruction's (logical) line that remember where they are,
//! so that an error can point at its culprit.

/// A slice of the logical line and its byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span<'a> {
    pub text: &'a str,
    pub at: usize,
}

/// A word taken from a line (unquoted or decoded, so not always a slice of
/// it) and the offset of its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: String,
    pub at: usize,
}

/// An error inside a logical line, before it is placed on a source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub at: usize,
    pub message: String,
}

impl<'a> Span<'a> {
    pub fn new(text: &'a str, at: usize) -> Self {
        Self { text, at }
    }

    /// `text[start..end]`; both are byte offsets on character boundaries.
    pub fn slice(self, start: usize, end: usize) -> Self {
        Self {
            text: &self.text[start..end],
            at: self.at + start,
        }
    }

    /// `text[start..]`.
    pub fn from(self, start: usize) -> Self {
        self.slice(start, self.text.len())
    }

    pub fn trim_start(self) -> Self {
        let rest = self.text.trim_start();
        self.from(self.text.len() - rest.len())
    }

    pub fn trim(self) -> Self {
        let start = self.trim_start();
        Self {
            text: start.text.trim_end(),
            at: start.at,
        }
    }

    pub fn is_empty(self) -> bool {
        self.text.is_empty()
    }

    pub fn word(self) -> Word {
        Word {
            text: self.text.to_string(),
            at: self.at,
        }
    }

    pub fn fault(self, message: impl Into<String>) -> Fault {
        Fault::new(self.at, message)
    }
}

impl Fault {
    pub fn new(at: usize, message: impl Into<String>) -> Self {
        Self {
            at,
            message: message.into(),
        }
    }
}

impl Word {
    pub fn fault(&self, message: impl Into<String>) -> Fault {
        Fault::new(self.at, message)
    }
}
