//! A token server for the distribution spec's bearer flow, as Docker Hub
//! runs one: `GET /token?service=…&scope=…` with basic auth answers a
//! JWT (RS256, its certificate in `x5c`) granting the scopes asked for to
//! the one known user; others get no access. A login (`offline_token=
//! true`) also gets a refresh token, which `POST /token` (OAuth2's
//! `grant_type=refresh_token`) takes instead of the password. The key and
//! certificate are made with the `openssl` command; the registry trusts
//! the certificate.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;

pub const SERVICE: &str = "berth-test-registry";
const ISSUER: &str = "berth-test-issuer";

/// The server; it serves until the test process ends.
pub struct TokenServer {
    pub addr: String,
    pub dir: tempfile::TempDir,
    /// Every token request's query (a POST's form, after `POST `), in
    /// order.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// The `expires_in` of the tokens given, in seconds (600 at first).
    pub lifetime: Arc<AtomicU64>,
}

impl TokenServer {
    pub fn start(user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=berth-test-token"])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(st.success());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let signer = Signer {
            key: dir.path().join("key.pem"),
            cert_der_b64: cert_der_base64(&dir.path().join("cert.pem")),
            basic: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
            user: user.to_owned(),
        };
        let seen = requests.clone();
        let lifetime = Arc::new(AtomicU64::new(600));
        let life = lifetime.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = answer(conn, &signer, &seen, life.load(Ordering::SeqCst));
            }
        });
        Self {
            addr,
            dir,
            requests,
            lifetime,
        }
    }

    /// The registry's `auth:` section for this server.
    pub fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    \
             issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.addr,
            self.dir.path().join("cert.pem").display()
        )
    }
}

struct Signer {
    key: PathBuf,
    cert_der_b64: String,
    basic: String,
    user: String,
}

fn cert_der_base64(pem: &std::path::Path) -> String {
    std::fs::read_to_string(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    /// A JWT granting `scopes` (`repository:name:actions`), RS256-signed.
    fn token(&self, scopes: &[String]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({
                    "type": kind, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let header =
            serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5c": [self.cert_der_b64] });
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": self.user, "aud": SERVICE,
            "exp": now + 600, "nbf": now - 60, "iat": now,
            "jti": format!("{now}-{}", scopes.len()), "access": access,
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let sig = child.wait_with_output().unwrap().stdout;
        format!("{input}.{}", b64url(&sig))
    }
}

/// One request: a token for the right user (by password or refresh
/// token), 401 for a wrong one, a token granting nothing to anyone else.
fn answer(
    conn: TcpStream,
    signer: &Signer,
    seen: &Mutex<Vec<String>>,
    lifetime: u64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let target = words.next().unwrap_or("").to_owned();
    let mut authorization = None;
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_owned());
            } else if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let refresh_token = format!("refresh-{}", signer.user);
    let mut by_password = false;
    let (status, body) = if method == "POST" {
        let mut form = vec![0; length];
        std::io::Read::read_exact(&mut reader, &mut form)?;
        let form = String::from_utf8_lossy(&form).into_owned();
        seen.lock().unwrap().push(format!("POST {form}"));
        let field = |name: &str| {
            form_urlencoded::parse(form.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let scopes: Vec<String> = field("scope").split(' ').map(str::to_owned).collect();
        if field("grant_type") == "refresh_token" && field("refresh_token") == refresh_token {
            ("200 OK", signer.token(&scopes))
        } else {
            ("401 Unauthorized", String::new())
        }
    } else {
        let query = target.split_once('?').map_or("", |(_, q)| q).to_owned();
        seen.lock().unwrap().push(query.clone());
        let scopes: Vec<String> = form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned())
            .collect();
        match authorization {
            Some(a) if a == signer.basic => {
                by_password = true;
                ("200 OK", signer.token(&scopes))
            }
            Some(_) => ("401 Unauthorized", String::new()),
            None => ("200 OK", signer.token(&[])),
        }
    };
    let offline = by_password && target.contains("offline_token=true");
    let body = if body.is_empty() {
        r#"{"details":"incorrect username or password"}"#.to_owned()
    } else if offline {
        serde_json::json!({
            "token": body, "access_token": body, "expires_in": lifetime,
            "refresh_token": refresh_token,
        })
        .to_string()
    } else {
        serde_json::json!({ "token": body, "access_token": body, "expires_in": lifetime })
            .to_string()
    };
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}
