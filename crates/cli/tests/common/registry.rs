//! A real registry for the pull and push tests: Debian's `docker-registry`
//! (the CNCF distribution server) on a free 127.0.0.1 port with its
//! storage in a temporary directory, optionally behind htpasswd; and a
//! tiny HTTP proxy in front of it that can break one blob's transfer
//! (flip a byte, cut the connection, stall) and records every request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `docker-registry serve` of its own; killed (by its pid) on drop.
pub struct LocalRegistry {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:port`, the registry part of image names.
    pub addr: String,
}

impl LocalRegistry {
    /// A registry anyone may push to and pull from.
    pub fn start() -> Self {
        Self::launch(None, None)
    }

    /// A registry that wants `user`/`password` (basic auth, htpasswd).
    pub fn with_login(user: &str, password: &str) -> Self {
        Self::launch(Some((user, password)), None)
    }

    /// A registry that wants bearer tokens from `tokens`.
    pub fn with_tokens(tokens: &super::token::TokenServer) -> Self {
        Self::launch(None, Some(tokens.registry_auth()))
    }

    fn launch(login: Option<(&str, &str)>, auth: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = login {
            let htpasswd = dir.path().join("htpasswd");
            let st = Command::new("htpasswd")
                .args(["-Bbc", htpasswd.to_str().unwrap(), user, password])
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd (apt-get install apache2-utils)");
            assert!(st.success());
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some(a) = auth {
            config.push_str(&a);
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = serve(dir.path());
        let r = Self { child, dir, addr };
        wait_listening(&r.addr);
        r
    }

    /// Kills the registry (SIGKILL) and starts another on the same
    /// storage and port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = serve(self.dir.path());
        wait_listening(&self.addr);
    }

    /// Where the registry keeps a blob's bytes (to check what it holds).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `skopeo copy` from `source` (a transport:path) to `repo:tag` here.
    pub fn skopeo_push(&self, source: &str, name: &str, all: bool) {
        let dest = format!("docker://{}/{name}", self.addr);
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--dest-tls-verify=false"]);
        if all {
            cmd.arg("--all");
        }
        let out = cmd.arg(source).arg(&dest).output().unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {source} {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `skopeo inspect --raw` of a name here: the manifest's own bytes.
    pub fn raw_manifest(&self, name: &str) -> Vec<u8> {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/{name}", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `PUT /v2/<repo>/manifests/<tag>` of `body` as `media_type`, by
    /// hand (a manifest no tool would write); returns the status line.
    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, body: &[u8]) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nContent-Type: {media_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    }

    /// The digest of a name's manifest, as a registry names it.
    pub fn manifest_digest(&self, name: &str) -> String {
        use sha2::Digest as _;
        let raw = self.raw_manifest(name);
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(raw)))
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Child {
    Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (apt-get install docker-registry)")
}

/// A port nothing listens on now (the registry binds it right after).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn wait_listening(addr: &str) {
    for _ in 0..2000 {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("nothing listens on {addr}");
}

/// What the proxy does to the response body of a GET of one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Passes everything through.
    None,
    /// Flips one byte of the blob, every time.
    Flip { digest: String },
    /// Sends this many bytes, then closes the connection (once).
    Cut { digest: String, after: usize },
    /// Sends this many bytes, then sends nothing more, every time.
    Stall { digest: String, after: usize },
    /// Passes on this many bytes of the next `PATCH` with a longer body,
    /// then closes both connections without an answer (once).
    CutUpload { after: usize },
}

/// A proxy on 127.0.0.1 in front of a registry, one request per
/// connection; keeps every request's head.
pub struct FaultyProxy {
    pub addr: String,
    pub fault: Arc<Mutex<Fault>>,
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FaultyProxy {
    pub fn start(upstream: &str, fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let p = Self {
            addr,
            fault: Arc::new(Mutex::new(fault)),
            requests: Arc::default(),
            stop: Arc::default(),
        };
        let (fault, requests, stop) = (p.fault.clone(), p.requests.clone(), p.stop.clone());
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (up, fault, requests, stop) = (
                    upstream.clone(),
                    fault.clone(),
                    requests.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    let _ = relay(conn, &up, &fault, &requests, &stop);
                });
            }
        });
        p
    }

    /// The request heads seen so far that contain `needle`.
    pub fn seen(&self, needle: &str) -> Vec<String> {
        let all = self.requests.lock().unwrap();
        all.iter().filter(|r| r.contains(needle)).cloned().collect()
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr); // wakes the accept loop
    }
}

/// Reads an HTTP head (through the blank line).
fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            return Ok(head);
        }
    }
}

/// The head with `Connection: close` in place of any Connection header.
fn closing(head: &str) -> String {
    let mut out = String::new();
    for line in head.trim_end().split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out + "Connection: close\r\n\r\n"
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// A chunked body as it came, framing and all (no trailers).
fn read_chunked(r: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        raw.extend_from_slice(line.as_bytes());
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
        let mut chunk = vec![0u8; size + 2]; // the data and its CRLF
        r.read_exact(&mut chunk)?;
        raw.extend_from_slice(&chunk);
        if size == 0 {
            return Ok(raw);
        }
    }
}

fn relay(
    client: TcpStream,
    upstream: &str,
    fault: &Mutex<Fault>,
    requests: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let head = read_head(&mut from_client)?;
    requests.lock().unwrap().push(head.clone());
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        read_chunked(&mut from_client)?
    } else {
        let mut body = vec![0u8; content_length(&head)];
        from_client.read_exact(&mut body)?;
        body
    };
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(closing(&head).as_bytes())?;
    let cut_upload = match &*fault.lock().unwrap() {
        Fault::CutUpload { after } if head.starts_with("PATCH ") && body.len() > *after => {
            Some(*after)
        }
        _ => None,
    };
    if let Some(after) = cut_upload {
        *fault.lock().unwrap() = Fault::None;
        up.write_all(&body[..after.min(body.len())])?;
        up.flush()?;
        // Both ends closed: the registry gets a short body, the client
        // no answer.
        let _ = up.shutdown(std::net::Shutdown::Both);
        return client.shutdown(std::net::Shutdown::Both);
    }
    up.write_all(&body)?;
    let mut from_up = BufReader::new(up);
    let response = read_head(&mut from_up)?;
    let mut client = client;
    client.write_all(closing(&response).as_bytes())?;
    let request_line = head.lines().next().unwrap_or("").to_owned();
    let active = fault.lock().unwrap().clone();
    let hit = |d: &str| request_line.starts_with("GET ") && request_line.contains(d);
    let mut rest = Vec::new();
    from_up.read_to_end(&mut rest)?;
    match active {
        Fault::Flip { digest } if hit(&digest) && !rest.is_empty() => {
            let i = rest.len() / 2;
            rest[i] ^= 0x01;
            client.write_all(&rest)
        }
        Fault::Cut { digest, after } if hit(&digest) => {
            *fault.lock().unwrap() = Fault::None;
            client.write_all(&rest[..after.min(rest.len())])
        }
        Fault::Stall { digest, after } if hit(&digest) => {
            client.write_all(&rest[..after.min(rest.len())])?;
            client.flush()?;
            // Silent, not closed, until the test ends.
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }
        _ => client.write_all(&rest),
    }
}

/// Writes an OCI image layout at `dir` holding one index with an image
/// per architecture (each a single layer with the file `/arch` naming
/// it), for a multi-platform push with `skopeo copy --all oci:dir`.
pub fn multi_arch_layout(dir: &Path, arches: &[&str]) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        use sha2::Digest as _;
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut manifests = Vec::new();
    for arch in arches {
        let (tar, diff_id) = layer_with_file("arch", arch.as_bytes());
        let (layer, layer_size) = put(&tar);
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": { "Cmd": ["/arch"] },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        });
        let (config, config_size) = put(config.to_string().as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": config, "size": config_size },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                         "digest": layer, "size": layer_size }],
        });
        let (digest, size) = put(manifest.to_string().as_bytes());
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": { "architecture": arch, "os": "linux" },
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let (digest, size) = put(index.to_string().as_bytes());
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{ "mediaType": "application/vnd.oci.image.index.v1+json",
                        "digest": digest, "size": size,
                        "annotations": { "org.opencontainers.image.ref.name": "multi" } }],
    });
    std::fs::write(dir.join("index.json"), top.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// A gzipped tar of one file; returns it and the uncompressed digest.
pub fn layer_with_file(name: &str, content: &[u8]) -> (Vec<u8>, String) {
    use sha2::Digest as _;
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, content).unwrap();
    let raw = b.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}
