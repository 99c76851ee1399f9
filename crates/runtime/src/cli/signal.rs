//! Signal arguments as runc takes them: a number, or a name with or without
//! the SIG prefix, in any case.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::error::{Result, RuntimeError};

/// Parses `9`, `KILL`, `SIGKILL` or `sigkill`.
pub fn parse(text: &str) -> Result<Signal> {
    let invalid = || RuntimeError::InvalidArgument(format!("invalid signal {text:?}"));
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| invalid());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for text in ["9", "KILL", "SIGKILL", "sigkill", "kill"] {
            assert_eq!(parse(text).unwrap(), Signal::SIGKILL, "{text}");
        }
        assert_eq!(parse("TERM").unwrap(), Signal::SIGTERM);
    }

    #[test]
    fn nonsense_is_refused() {
        for text in ["0", "99", "SIGFLY", ""] {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().contains("invalid signal"), "{text}: {err}");
        }
    }
}
