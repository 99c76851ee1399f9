//! One instruction, prepared: its variables substituted, its effect on the
//! image config applied to the stage's next state, what it must do to the
//! filesystem (if anything), the text its cache key and history entry are
//! made of. What Docker's classic builder writes is followed: history
//! entries such as `/bin/sh -c #(nop)  ENV A=b`, `|1 V=x /bin/sh -c make`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use berth_dockerfile::{self as df, Command, Healthcheck, Instruction, Kind};
use serde_json::{json, Value};

use crate::copy::CopyOptions;
use crate::error::{BuildError, Result};
use crate::exec::RunMount;
use crate::state::{StageState, PREDEFINED_ARGS};

/// Where a `COPY` or a bind mount reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    Context,
    /// A `--from` value (a stage name or index, or an image), expanded.
    Named(String),
    /// Inline files (`COPY <<EOF`): name → content.
    Inline(Vec<(String, String)>),
    /// `ADD <url>…`: downloaded, `--checksum` verified.
    Urls {
        urls: Vec<String>,
        checksum: Option<String>,
    },
}

/// A `COPY` or `ADD` to perform.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    pub from: From,
    pub sources: Vec<String>,
    pub dest: String,
    /// `--chown` as written (names resolve in the destination).
    pub chown: Option<String>,
    pub opts: CopyOptions,
    pub add: bool,
    /// `--link`: written into a layer of its own, over nothing (BuildKit's
    /// independent layer), not over the stage's files.
    pub link: bool,
}

/// A `RUN --mount` to set up.
#[derive(Debug, Clone)]
pub enum MountPlan {
    /// A path of the context or of another stage or image.
    Bind {
        from: From,
        source: String,
        target: String,
    },
    /// A persistent cache directory, by id.
    Cache {
        id: String,
        target: String,
        mode: u32,
        uid: u32,
        gid: u32,
        sharing: df::Sharing,
    },
    Ready(RunMount),
}

/// A `RUN` to perform.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub mounts: Vec<MountPlan>,
    pub network: Option<String>,
}

/// What an instruction does besides editing the config.
#[derive(Debug, Clone)]
pub enum Action {
    /// Nothing to the filesystem.
    Meta,
    /// `WORKDIR`: create the directory if missing.
    Workdir(String),
    Run(RunPlan),
    Copy(CopyPlan),
}

/// A prepared instruction.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The instruction after substitution: what its cache key hashes
    /// (with the content checksum of what it copies, added later).
    pub key_text: String,
    /// The history entry (`created_by`).
    pub created_by: String,
    pub action: Action,
}

/// What preparing needs besides the stage.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// `--build-arg`s.
    pub build_args: &'a BTreeMap<String, String>,
    /// The meta `ARG`s' values (before the first `FROM`).
    pub meta: &'a BTreeMap<String, Option<String>>,
    /// Build arguments some `ARG` consumed.
    pub used: &'a Mutex<BTreeSet<String>>,
    pub escape: char,
}

impl Inputs<'_> {
    fn consume(&self, name: &str) {
        self.used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned());
    }
}

fn at(instr: &Instruction, e: impl std::fmt::Display) -> BuildError {
    BuildError::Invalid(format!(
        "Dockerfile:{}: {}: {e}",
        instr.location.start_line,
        instr.kind.keyword()
    ))
}

/// Substitutes variables in one word.
fn word(s: &StageState, i: &Inputs<'_>, instr: &Instruction, w: &str) -> Result<String> {
    df::expand::expand(w, i.escape, &|n| s.lookup(n)).map_err(|e| at(instr, e))
}

/// `#(nop)` history text, in the stage's shell (Docker's classic form:
/// two spaces before a metadata instruction).
fn nop(s: &StageState, text: &str) -> String {
    format!("{} #(nop)  {text}", s.shell().join(" "))
}

/// The classic builder's one-space `#(nop)` (WORKDIR, COPY, ADD).
fn nop1(s: &StageState, text: &str) -> String {
    format!("{} #(nop) {text}", s.shell().join(" "))
}

/// Prepares `instr`, applying its config edits to `s`.
pub fn prepare(instr: &Instruction, s: &mut StageState, i: &Inputs<'_>) -> Result<Prepared> {
    let meta = |s: &StageState, text: String| Prepared {
        created_by: nop(s, &text),
        key_text: text,
        action: Action::Meta,
    };
    Ok(match &instr.kind {
        Kind::Env(pairs) => {
            let mut done = Vec::new();
            for kv in pairs {
                // Every pair sees the environment before the instruction.
                done.push((word(s, i, instr, &kv.key)?, word(s, i, instr, &kv.value)?));
            }
            for (k, v) in &done {
                s.set_env(k, v);
            }
            let text: Vec<String> = done.iter().map(|(k, v)| format!("{k}={v}")).collect();
            meta(s, format!("ENV {}", text.join(" ")))
        }
        Kind::Label(pairs) => {
            let mut text = Vec::new();
            for kv in pairs {
                let (k, v) = (word(s, i, instr, &kv.key)?, word(s, i, instr, &kv.value)?);
                text.push(format!("{k}={v}"));
                s.run_config()
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k, v);
            }
            meta(s, format!("LABEL {}", text.join(" ")))
        }
        Kind::Arg(decls) => arg(instr, decls, s, i)?,
        Kind::Workdir(w) => {
            let w = word(s, i, instr, w)?;
            let path = clean_path(&if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", s.workdir())
            });
            s.run_config().working_dir.clone_from(&path);
            let text = format!("WORKDIR {path}");
            Prepared {
                created_by: nop1(s, &text),
                key_text: text,
                action: Action::Workdir(path),
            }
        }
        Kind::User(u) => {
            let u = word(s, i, instr, u)?;
            s.run_config().user.clone_from(&u);
            meta(s, format!("USER {u}"))
        }
        Kind::Expose(ports) => {
            let mut all = Vec::new();
            let mut words = Vec::new();
            for p in ports {
                for w in df::expand::expand_words(p, i.escape, &|n| s.lookup(n))
                    .map_err(|e| at(instr, e))?
                {
                    all.extend(expose(&w).map_err(|e| at(instr, e))?);
                    words.push(w);
                }
            }
            // History lists the words as written, sorted (as Docker does).
            words.sort();
            let map = s
                .run_config()
                .exposed_ports
                .get_or_insert_with(BTreeMap::new);
            for p in &all {
                map.insert(p.clone(), json!({}));
            }
            meta(s, format!("EXPOSE {}", words.join(" ")))
        }
        Kind::Volume(paths) => {
            let mut all = Vec::new();
            for p in paths {
                let p = word(s, i, instr, p)?;
                if p.trim().is_empty() {
                    return Err(at(instr, "VOLUME specified can not be an empty string"));
                }
                all.push(p);
            }
            let map = s.run_config().volumes.get_or_insert_with(BTreeMap::new);
            for p in &all {
                map.insert(p.clone(), json!({}));
            }
            meta(s, format!("VOLUME [{}]", all.join(" ")))
        }
        Kind::Cmd(c) => {
            let argv = argv(s, c);
            s.run_config().cmd = Some(argv.clone());
            s.cmd_set = true;
            meta(s, format!("CMD {}", go_quoted(&argv)))
        }
        Kind::Entrypoint(c) => {
            let argv = argv(s, c);
            let cfg_cmd_set = s.cmd_set;
            let c = s.run_config();
            c.entrypoint = Some(argv.clone());
            // An inherited CMD was written for another entrypoint.
            if !cfg_cmd_set {
                c.cmd = None;
            }
            meta(s, format!("ENTRYPOINT {}", go_quoted(&argv)))
        }
        Kind::Shell(sh) => {
            s.run_config().shell = Some(sh.clone());
            meta(s, format!("SHELL [{}]", sh.join(" ")))
        }
        Kind::StopSignal(sig) => {
            let sig = word(s, i, instr, sig)?;
            check_signal(&sig).map_err(|e| at(instr, e))?;
            s.run_config().stop_signal = Some(sig.clone());
            meta(s, format!("STOPSIGNAL {sig}"))
        }
        Kind::Healthcheck(h) => {
            let value = healthcheck(h);
            s.run_config().healthcheck = Some(value.clone());
            meta(s, format!("HEALTHCHECK {}", healthcheck_text(&value)))
        }
        Kind::Onbuild(trigger) => {
            s.run_config()
                .on_build
                .get_or_insert_with(Vec::new)
                .push(trigger.original.clone());
            meta(s, format!("ONBUILD {}", trigger.original))
        }
        Kind::Maintainer(m) => {
            s.config.author = Some(m.clone());
            meta(s, format!("MAINTAINER {m}"))
        }
        Kind::Run(r) => run(instr, r, s, i)?,
        Kind::Copy(c) => copy(instr, c, false, s, i)?,
        Kind::Add(c) => copy(instr, c, true, s, i)?,
    })
}

fn arg(
    instr: &Instruction,
    decls: &[df::ArgDecl],
    s: &mut StageState,
    i: &Inputs<'_>,
) -> Result<Prepared> {
    let mut text = Vec::new();
    let mut key = Vec::new();
    for d in decls {
        let value = match (i.build_args.get(&d.name), &d.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(def)) => Some(word(s, i, instr, def)?),
            (None, None) => i.meta.get(&d.name).cloned().flatten(),
        };
        if i.build_args.contains_key(&d.name) {
            i.consume(&d.name);
        }
        text.push(match &d.default {
            Some(def) => format!("{}={def}", d.name),
            None => d.name.clone(),
        });
        key.push(format!("{}={}", d.name, value.as_deref().unwrap_or("")));
        s.args.push((d.name.clone(), value));
    }
    Ok(Prepared {
        created_by: nop(s, &format!("ARG {}", text.join(" "))),
        key_text: format!("ARG {}", key.join(" ")),
        action: Action::Meta,
    })
}

/// The argv of a command: the exec form as is, the shell form in the
/// stage's shell.
fn argv(s: &StageState, c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(line) => {
            let mut v = s.shell();
            v.push(line.clone());
            v
        }
    }
}

fn run(instr: &Instruction, r: &df::Run, s: &mut StageState, i: &Inputs<'_>) -> Result<Prepared> {
    let args = match &r.command {
        Command::Shell(line) if !r.heredocs.is_empty() => heredoc_script(s, line, &r.heredocs),
        other => argv(s, other),
    };
    // Declared arguments with values reach the process (an ENV of the same
    // name wins); Docker's proxies do too, unseen by history and cache.
    let env_keys: BTreeSet<String> = s.env_map().into_keys().collect();
    let mut declared: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &s.args {
        if let (Some(v), false) = (v, env_keys.contains(k)) {
            declared.insert(k.clone(), v.clone());
        }
    }
    let mut env = s.container().env.unwrap_or_default();
    env.extend(declared.iter().map(|(k, v)| format!("{k}={v}")));
    let mut proxies = false;
    for p in PREDEFINED_ARGS {
        if let (Some(v), false) = (i.build_args.get(*p), declared.contains_key(*p)) {
            env.push(format!("{p}={v}"));
            i.consume(p);
            proxies = true;
        }
    }
    let mut created_by = args.join(" ");
    // Docker's `|N k=v …` prefix: the declared arguments; undeclared
    // proxies are hidden but still make a `|0 ` prefix.
    if !declared.is_empty() || proxies {
        let pairs: Vec<String> = declared.iter().map(|(k, v)| format!("{k}={v}")).collect();
        created_by = match pairs.is_empty() {
            true => format!("|0 {created_by}"),
            false => format!("|{} {} {created_by}", pairs.len(), pairs.join(" ")),
        };
    }
    let mut mounts = Vec::new();
    let mut mount_text = Vec::new();
    for m in &r.mounts {
        if let Some((plan, text)) = mount(instr, m, s, i)? {
            mounts.push(plan);
            mount_text.push(text);
        }
    }
    let network = r
        .network
        .as_deref()
        .map(|n| word(s, i, instr, n))
        .transpose()?;
    if let Some(n) = network.as_deref() {
        if !matches!(n, "default" | "none" | "host") {
            return Err(at(
                instr,
                format!("unsupported network mode {n:?}: use default, none or host"),
            ));
        }
    }
    let key_text = format!(
        "RUN {} {created_by} {}",
        mount_text.join(" "),
        network.as_deref().unwrap_or("")
    );
    Ok(Prepared {
        key_text,
        created_by,
        action: Action::Run(RunPlan {
            args,
            env,
            mounts,
            network,
        }),
    })
}

/// The argv of a shell-form `RUN` with heredocs: a lone heredoc is the
/// script; otherwise the shell gets the line and the bodies, as written.
fn heredoc_script(s: &StageState, line: &str, docs: &[df::Heredoc]) -> Vec<String> {
    let mut argv = s.shell();
    let only_markers = line.split_whitespace().all(|w| w.starts_with("<<"));
    if docs.len() == 1 && only_markers {
        argv.push(docs[0].content.clone());
        return argv;
    }
    let mut script = line.to_owned();
    script.push('\n');
    for d in docs {
        script.push_str(&d.content);
        script.push_str(&d.name);
        script.push('\n');
    }
    argv.push(script);
    argv
}

fn mount(
    instr: &Instruction,
    m: &df::Mount,
    s: &StageState,
    i: &Inputs<'_>,
) -> Result<Option<(MountPlan, String)>> {
    let target = absolute(s, &word(s, i, instr, &m.target)?);
    let from = m
        .from
        .as_deref()
        .map(|f| word(s, i, instr, f))
        .transpose()?;
    Ok(Some(match m.kind {
        df::MountKind::Bind => {
            if !m.readonly {
                // BuildKit's rw discards the writes: that needs a copy of
                // the source, not done yet.
                return Err(at(
                    instr,
                    "--mount=type=bind,rw is not supported yet: bind mounts are read-only",
                ));
            }
            let source = m
                .source
                .as_deref()
                .map(|p| word(s, i, instr, p))
                .transpose()?;
            let source = source.unwrap_or_else(|| "/".to_owned());
            let text = format!("bind:{}:{source}:{target}", from.as_deref().unwrap_or(""));
            let from = from.map_or(From::Context, From::Named);
            (
                MountPlan::Bind {
                    from,
                    source,
                    target,
                },
                text,
            )
        }
        df::MountKind::Cache => {
            if from.is_some() {
                return Err(at(instr, "--mount=type=cache,from= is not supported yet"));
            }
            let id = m.id.as_deref().map(|p| word(s, i, instr, p)).transpose()?;
            let id = id.unwrap_or_else(|| target.clone());
            let (mode, uid, gid) = (
                m.mode.unwrap_or(0o755),
                m.uid.unwrap_or(0),
                m.gid.unwrap_or(0),
            );
            let text = format!("cache:{id}:{target}:{mode:o}:{uid}:{gid}");
            (
                MountPlan::Cache {
                    id,
                    target,
                    mode,
                    uid,
                    gid,
                    sharing: m.sharing,
                },
                text,
            )
        }
        df::MountKind::Tmpfs => {
            let text = format!("tmpfs:{target}:{}", m.size.unwrap_or(0));
            (
                MountPlan::Ready(RunMount::Tmpfs {
                    target,
                    size: m.size,
                }),
                text,
            )
        }
        df::MountKind::Secret | df::MountKind::Ssh => {
            if m.required {
                return Err(at(
                    instr,
                    "secret and ssh mounts are not supported yet: berth forwards none",
                ));
            }
            return Ok(None);
        }
    }))
}

fn copy(
    instr: &Instruction,
    c: &df::Copy,
    add: bool,
    s: &mut StageState,
    i: &Inputs<'_>,
) -> Result<Prepared> {
    let name = if add { "ADD" } else { "COPY" };
    let mut sources = Vec::new();
    for src in &c.sources {
        let src = word(s, i, instr, src)?;
        if add && src.starts_with("git@") {
            return Err(at(
                instr,
                format!("ADD {src}: git sources are not supported yet"),
            ));
        }
        sources.push(src);
    }
    let dest = word(s, i, instr, &c.dest)?;
    let dest_abs = if dest.starts_with('/') {
        dest.clone()
    } else {
        // Relative to WORKDIR, keeping a trailing slash.
        let joined = format!("{}/{dest}", s.workdir().trim_end_matches('/'));
        if dest.ends_with('/') || dest == "." {
            format!("{}/", clean_path(&joined))
        } else {
            clean_path(&joined)
        }
    };
    let chown = c
        .chown
        .as_deref()
        .map(|v| word(s, i, instr, v))
        .transpose()?;
    let mode = c
        .chmod
        .as_deref()
        .map(|m| {
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    at(
                        instr,
                        format!("invalid chmod parameter: {m}: use octal digits such as 0755"),
                    )
                })
        })
        .transpose()?;
    let urls = sources.iter().filter(|s| crate::fetch::is_url(s)).count();
    if urls > 0 && (!add || urls != sources.len()) {
        return Err(at(
            instr,
            match add {
                true => "ADD: mixing URLs and local sources in one instruction is not supported: split it",
                false => "COPY cannot download URLs: use ADD",
            },
        ));
    }
    let from = if urls > 0 {
        From::Urls {
            urls: sources.clone(),
            checksum: c.checksum.clone(),
        }
    } else if !c.heredocs.is_empty() {
        let mut files = Vec::new();
        for h in &c.heredocs {
            let content = if h.expand {
                df::expand::expand_heredoc(&h.content, i.escape, &|n| s.lookup(n))
                    .map_err(|e| at(instr, e))?
            } else {
                h.content.clone()
            };
            sources.push(h.name.clone());
            files.push((h.name.clone(), content));
        }
        From::Inline(files)
    } else {
        match c.from.as_deref() {
            Some(f) => From::Named(word(s, i, instr, f)?),
            None => From::Context,
        }
    };
    let mut flags = String::new();
    if let From::Named(f) = &from {
        flags.push_str(&format!("--from={f} "));
    }
    if let Some(o) = &chown {
        flags.push_str(&format!("--chown={o} "));
    }
    if let Some(m) = mode {
        flags.push_str(&format!("--chmod={m:o} "));
    }
    let key_text = format!("{name} {flags}{} {dest_abs}", sources.join(" "));
    let chown_note = chown
        .as_ref()
        .map(|o| format!("--chown={o}"))
        .unwrap_or_default();
    Ok(Prepared {
        // Completed with the content checksum once the sources are resolved.
        created_by: format!("{name} {chown_note}\0 in {dest} "),
        key_text,
        action: Action::Copy(CopyPlan {
            link: c.link,
            from,
            sources,
            dest: dest_abs,
            chown,
            opts: CopyOptions {
                owner: None,
                mode,
                // A downloaded archive stays an archive (Docker's rule).
                extract: add && urls == 0,
            },
            add,
        }),
    })
}

/// The classic builder's `COPY` history text (`COPY --chown=appfile:<sum>
/// in /dst `, the destination as written), once the checksum is known:
/// `template` is the prepared text with `\0` where the source goes.
pub fn copy_history(s: &StageState, template: &str, kind: &str, checksum: &str) -> String {
    nop1(s, &template.replace('\0', &format!("{kind}:{checksum}")))
}

/// An absolute path in the stage (relative ones are under WORKDIR).
fn absolute(s: &StageState, p: &str) -> String {
    if p.starts_with('/') {
        clean_path(p)
    } else {
        clean_path(&format!("{}/{p}", s.workdir()))
    }
}

/// Go's `path.Clean` for absolute paths.
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `EXPOSE` words: `80`, `80/tcp`, `53/udp`, ranges `8000-8002`.
fn expose(w: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = w.split_once('/').unwrap_or((w, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!(
            "invalid range specified for container port: {ports}"
        ));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn check_signal(sig: &str) -> std::result::Result<(), String> {
    if sig.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n)) {
        return Ok(());
    }
    let up = sig.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let known = [
        "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
        "PIPE", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
        "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    let rt = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
        .is_some_and(|r| r.is_empty() || r.trim_start_matches(['+', '-']).parse::<u8>().is_ok());
    if known.contains(&name) || rt {
        Ok(())
    } else {
        Err(format!("Invalid signal: {sig}"))
    }
}

fn healthcheck(h: &Healthcheck) -> Value {
    match h {
        Healthcheck::None => json!({ "Test": ["NONE"] }),
        Healthcheck::Check {
            command,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test: Vec<String> = match command {
                Command::Exec(v) => std::iter::once("CMD".to_owned())
                    .chain(v.iter().cloned())
                    .collect(),
                Command::Shell(line) => vec!["CMD-SHELL".to_owned(), line.clone()],
            };
            let mut v = json!({ "Test": test });
            let ns =
                |d: &std::time::Duration| json!(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            for (k, d) in [
                ("Interval", interval),
                ("Timeout", timeout),
                ("StartPeriod", start_period),
                ("StartInterval", start_interval),
            ] {
                if let Some(d) = d {
                    v[k] = ns(d);
                }
            }
            if let Some(r) = retries {
                v["Retries"] = json!(r);
            }
            v
        }
    }
}

/// The classic builder's history text of a healthcheck: Go's `%q` of the
/// struct, `&{["CMD-SHELL" "…"] "30s" "5s" "10s" '\x04'}`.
fn healthcheck_text(v: &Value) -> String {
    let test: Vec<String> = v["Test"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let d = |k: &str| go_duration(v[k].as_u64().unwrap_or(0));
    let retries = v["Retries"].as_u64().unwrap_or(0);
    format!(
        "&{{{} {:?} {:?} {:?} {}}}",
        go_quoted(&test),
        d("Interval"),
        d("Timeout"),
        d("StartPeriod"),
        go_rune(retries)
    )
}

/// Go's `time.Duration.String()`.
pub fn go_duration(ns: u64) -> String {
    fn frac(v: u64, unit: u64) -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let digits = unit.ilog10() as usize;
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
    const S: u64 = 1_000_000_000;
    match ns {
        0 => "0s".to_owned(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", frac(n, 1_000)),
        n if n < S => format!("{}ms", frac(n, 1_000_000)),
        n => {
            let (h, m) = (n / (3600 * S), (n / (60 * S)) % 60);
            let secs = format!("{}s", frac(n % (60 * S), S));
            match (h, m) {
                (0, 0) => secs,
                (0, m) => format!("{m}m{secs}"),
                (h, m) => format!("{h}h{m}m{secs}"),
            }
        }
    }
}

/// Go's `%q` of an integer: a quoted character literal.
fn go_rune(n: u64) -> String {
    match char::from_u32(u32::try_from(n).unwrap_or(u32::MAX)) {
        Some(c) if (' '..='~').contains(&c) && c != '\'' && c != '\\' => format!("'{c}'"),
        Some('\'') => "'\\''".to_owned(),
        Some('\\') => "'\\\\'".to_owned(),
        _ if n < 0x80 => format!("'\\x{n:02x}'"),
        _ if n <= 0xffff => format!("'\\u{n:04x}'"),
        _ => format!("'\\U{n:08x}'"),
    }
}

/// A string list as Go's `%q` prints it: `["a" "b c"]`.
pub fn go_quoted(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::config::ImageConfig;

    fn stage() -> StageState {
        StageState::from_base(None, ImageConfig::default())
    }

    fn prep(src: &str, s: &mut StageState, args: &[(&str, &str)]) -> Result<Prepared> {
        let df = berth_dockerfile::parse(&format!("FROM scratch\n{src}\n")).unwrap();
        let build_args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let used = Mutex::new(BTreeSet::new());
        let meta = BTreeMap::new();
        let i = Inputs {
            build_args: &build_args,
            meta: &meta,
            used: &used,
            escape: '\\',
        };
        prepare(&df.stages[0].instructions[0], s, &i)
    }

    #[test]
    fn env_pairs_see_the_environment_before_the_instruction() {
        let mut s = stage();
        prep("ENV A=1", &mut s, &[]).unwrap();
        let p = prep("ENV A=2 B=$A", &mut s, &[]).unwrap();
        assert_eq!(s.lookup("B").as_deref(), Some("1"));
        assert_eq!(p.created_by, "/bin/sh -c #(nop)  ENV A=2 B=1");
    }

    #[test]
    fn entrypoint_drops_an_inherited_cmd_but_not_its_own() {
        let mut s = stage();
        s.run_config().cmd = Some(vec!["inherited".into()]);
        prep("ENTRYPOINT [\"/e\"]", &mut s, &[]).unwrap();
        assert_eq!(s.container().cmd, None);
        prep("CMD run", &mut s, &[]).unwrap();
        prep("ENTRYPOINT /e2", &mut s, &[]).unwrap();
        let c = s.container();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "run"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/e2"]);
    }

    #[test]
    fn run_gets_build_args_and_history_shows_them() {
        let mut s = stage();
        prep(
            "ARG V=default",
            &mut s,
            &[("V", "given"), ("HTTP_PROXY", "p")],
        )
        .unwrap();
        let p = prep(
            "RUN echo $V",
            &mut s,
            &[("V", "given"), ("HTTP_PROXY", "p")],
        )
        .unwrap();
        assert_eq!(p.created_by, "|1 V=given /bin/sh -c echo $V");
        let Action::Run(r) = p.action else { panic!() };
        assert!(r.env.contains(&"V=given".to_owned()));
        assert!(r.env.contains(&"HTTP_PROXY=p".to_owned()));
        assert!(!p.key_text.contains("HTTP_PROXY"));
    }

    #[test]
    fn workdir_chains_relative_paths_and_expose_normalises_ports() {
        let mut s = stage();
        prep("WORKDIR /a", &mut s, &[]).unwrap();
        prep("WORKDIR b/../c", &mut s, &[]).unwrap();
        assert_eq!(s.workdir(), "/a/c");
        prep("EXPOSE 80 53/udp 8000-8001", &mut s, &[]).unwrap();
        let ports: Vec<String> = s.container().exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert!(prep("EXPOSE 99999", &mut s, &[]).is_err());
        assert!(prep("STOPSIGNAL SIGNOPE", &mut s, &[]).is_err());
        prep("STOPSIGNAL SIGRTMIN+3", &mut s, &[]).unwrap();
    }

    #[test]
    fn go_formats_match_the_classic_builders_history() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_rune(4), "'\\x04'");
        assert_eq!(go_rune(65), "'A'");
        let v = json!({"Test": ["CMD-SHELL", "x"], "Interval": 30_000_000_000u64, "Retries": 4});
        assert_eq!(
            healthcheck_text(&v),
            r#"&{["CMD-SHELL" "x"] "30s" "0s" "0s" '\x04'}"#
        );
    }

    #[test]
    fn healthchecks_become_dockers_json() {
        let mut s = stage();
        prep(
            "HEALTHCHECK --interval=5s --retries=3 CMD curl -f localhost",
            &mut s,
            &[],
        )
        .unwrap();
        assert_eq!(
            s.container().healthcheck.unwrap(),
            json!({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5_000_000_000u64, "Retries": 3})
        );
        prep("HEALTHCHECK NONE", &mut s, &[]).unwrap();
        assert_eq!(
            s.container().healthcheck.unwrap(),
            json!({"Test": ["NONE"]})
        );
    }
}
