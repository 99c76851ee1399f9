//! berth's extension of `POST /build`: a client on the daemon's machine
//! names its context directory (in `remote`) instead of sending it as a
//! tar, and the daemon reads it in place. The directory's device and
//! inode travel with its path, so a daemon that sees another file system
//! there (a client in another mount namespace) refuses it and the client
//! sends the tar after all.

/// How a `remote` value naming a local directory starts.
const SCHEME: &str = "berth-local:";

/// A context directory as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalContext {
    pub dev: u64,
    pub ino: u64,
    /// An absolute path.
    pub path: String,
}

/// What a daemon answers, first in its message, when the directory it
/// finds is not the client's.
pub const NOT_THE_CLIENTS: &str = "the context directory is not the client's";

impl LocalContext {
    /// The `remote` value: `berth-local:DEV:INO:PATH`.
    pub fn to_remote(&self) -> String {
        format!("{SCHEME}{}:{}:{}", self.dev, self.ino, self.path)
    }

    /// A `remote` value naming a local directory; `None` for any other
    /// remote (a URL), `Some(Err)` for one that starts like ours and is
    /// not.
    pub fn from_remote(remote: &str) -> Option<Result<Self, String>> {
        let rest = remote.strip_prefix(SCHEME)?;
        let bad = || format!("invalid local build context {remote:?}");
        let parse = || -> Option<Self> {
            let (dev, rest) = rest.split_once(':')?;
            let (ino, path) = rest.split_once(':')?;
            Some(Self {
                dev: dev.parse().ok()?,
                ino: ino.parse().ok()?,
                path: path.to_owned(),
            })
        };
        Some(parse().filter(|c| c.path.starts_with('/')).ok_or_else(bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_context_round_trips_and_urls_are_not_ours() {
        let c = LocalContext {
            dev: 2049,
            ino: 12,
            path: "/home/a b/c:d".into(),
        };
        assert_eq!(LocalContext::from_remote(&c.to_remote()), Some(Ok(c)));
        assert_eq!(LocalContext::from_remote("https://x/y.tar"), None);
        assert!(matches!(
            LocalContext::from_remote("berth-local:1:x:/a"),
            Some(Err(_))
        ));
        assert!(matches!(
            LocalContext::from_remote("berth-local:1:2:relative"),
            Some(Err(_))
        ));
    }
}
