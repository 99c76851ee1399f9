//! `ADD <url>` (<https://docs.docker.com/reference/dockerfile/#adding-files-from-a-url>):
//! the file is downloaded (HTTP or HTTPS, rustls) into a directory of the
//! build, named after the URL's last path segment, mode 0600 and dated by
//! `Last-Modified` as Docker does; it is not extracted. `--checksum` is
//! verified. A server that cannot be reached fails the step with the
//! reason (connection refused, name not resolved, timed out).

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may stay silent once connected.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether an `ADD` source is a URL.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// The name a URL's file gets: its last path segment.
pub fn file_name(url: &str) -> Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let name = path
        .split_once('/')
        .map_or("", |(_, p)| p)
        .rsplit('/')
        .next()
        .unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return Err(BuildError::Invalid(format!(
            "ADD failed: cannot determine a filename from the URL {url}: give the destination a file name"
        )));
    }
    Ok(name.to_owned())
}

/// Downloads `url` into `dir` as [`file_name`]; returns the name.
pub fn download(url: &str, dir: &Path, checksum: Option<&str>) -> Result<String> {
    let name = file_name(url)?;
    let failed =
        |why: String| BuildError::Invalid(format!("ADD failed: failed to GET {url}: {why}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("the server answered {status}")));
    }
    let modified = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok());
    let path = dir.join(&name);
    let mut file =
        std::fs::File::create(&path).map_err(|e| BuildError::io("creating", &path, e))?;
    let mut body = response.into_body().into_reader();
    let digest = copy_hashing(&mut body, &mut file).map_err(|e| failed(e.to_string()))?;
    if let Some(want) = checksum {
        let hex = want.strip_prefix("sha256:").ok_or_else(|| {
            BuildError::Invalid(format!(
                "ADD --checksum={want}: only sha256:<hex> is supported"
            ))
        })?;
        if !hex.eq_ignore_ascii_case(&digest) {
            return Err(BuildError::Invalid(format!(
                "ADD failed: {url}: checksum mismatch: expected sha256:{hex}, got sha256:{digest}"
            )));
        }
    }
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| BuildError::io("setting the mode of", &path, e))?;
    if let Some(t) = modified {
        let t = std::time::SystemTime::from(t);
        file.set_modified(t)
            .map_err(|e| BuildError::io("dating", &path, e))?;
    }
    Ok(name)
}

fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn names_come_from_the_last_path_segment() {
        assert_eq!(
            file_name("https://example.com/a/b/tool.tar.gz?x=1").unwrap(),
            "tool.tar.gz"
        );
        assert!(file_name("http://example.com/").is_err());
        assert!(file_name("http://example.com").is_err());
    }

    /// A one-shot HTTP server on 127.0.0.1 answering `body`.
    fn serve(status: &str, body: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let status = status.to_owned();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body.as_bytes()).unwrap();
        });
        format!("http://{addr}")
    }

    #[test]
    fn a_download_is_0600_dated_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{}/files/hello.txt", serve("200 OK", "hello\n"));
        let sum = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        assert_eq!(download(&url, dir.path(), Some(sum)).unwrap(), "hello.txt");
        let meta = std::fs::metadata(dir.path().join("hello.txt")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert_eq!(mtime.as_secs(), 1_445_412_480);
        let url = format!("{}/files/hello.txt", serve("200 OK", "tampered\n"));
        let err = download(&url, dir.path(), Some(sum)).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn failures_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{}/missing", serve("404 Not Found", ""));
        let err = download(&url, dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
        // Nothing listens on a port just released.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = download(&format!("http://127.0.0.1:{port}/x"), dir.path(), None).unwrap_err();
        assert!(
            err.to_string().starts_with("ADD failed: failed to GET"),
            "{err}"
        );
        assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
    }
}
