//! `berth login` / `berth logout`: the daemon checks the credentials
//! (`POST /auth`); the client keeps them where the docker CLI does
//! (`$DOCKER_CONFIG/config.json` or its credential store), so berth and
//! docker share one login.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use berth_registry::login::{config_dir, config_key, erase, registry_name, save};
use berth_registry::Credentials;
use clap::Args;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (Docker Hub when omitted)
    pub server: Option<String>,
}

/// Reads one line from the terminal; without echo for a secret.
fn prompt(label: &str, secret: bool) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let saved = if secret { tcgetattr(&stdin).ok() } else { None };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning the terminal's echo off")?;
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
        eprintln!();
    }
    read.context("reading the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// The user name and password, from flags, stdin or the terminal.
fn credentials(a: &LoginArgs) -> Result<Credentials> {
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let tty = std::io::stdin().is_terminal();
    if a.password_stdin && a.username.is_none() {
        bail!("Must provide --username with --password-stdin");
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None if tty => prompt("Username: ", false)?,
        None => bail!("Cannot perform an interactive login from a non TTY device"),
    };
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut all = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut all)
                .context("reading the password from stdin")?;
            all.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) if tty => prompt("Password: ", true)?,
        (None, false) => bail!("Cannot perform an interactive login from a non TTY device"),
    };
    if username.is_empty() {
        bail!("Username cannot be empty");
    }
    if password.is_empty() {
        bail!("Password Required");
    }
    Ok(Credentials {
        username,
        password,
        identity_token: None,
    })
}

/// `berth login [SERVER]`.
pub async fn login(socket: &Path, a: &LoginArgs) -> Result<i32> {
    let name = registry_name(a.server.as_deref().unwrap_or(""));
    let mut creds = credentials(a)?;
    let server = config_key(&name);
    let body = serde_json::json!({
        "username": creds.username,
        "password": creds.password,
        "serveraddress": server,
    });
    let answer = super::connect::post_json(socket, "/auth", &body).await?;
    // A registry that gave an identity token gets it back instead of the
    // password from now on.
    if let Some(token) = answer["IdentityToken"].as_str().filter(|t| !t.is_empty()) {
        creds.identity_token = Some(token.to_owned());
        creds.password.clear();
    }
    let dir = config_dir()
        .ok_or_else(|| anyhow!("no place for the credentials: set HOME or DOCKER_CONFIG"))?;
    save(&dir, &name, &creds)?;
    println!("Login Succeeded");
    Ok(0)
}

/// `berth logout [SERVER]`.
pub fn logout(server: Option<&str>) -> Result<i32> {
    let name = registry_name(server.unwrap_or(""));
    let shown = config_key(&name);
    let dir = config_dir()
        .ok_or_else(|| anyhow!("no docker config directory: set HOME or DOCKER_CONFIG"))?;
    if erase(&dir, &name)? {
        println!("Removing login credentials for {shown}");
    } else {
        println!("Not logged in to {shown}");
    }
    Ok(0)
}
