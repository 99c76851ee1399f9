//! The instructions that take a command: `RUN`, `CMD`, `ENTRYPOINT`,
//! `HEALTHCHECK`, and `SHELL`. A command is in exec form when its text is
//! a JSON array of strings, else in shell form (kept as written).

use std::time::Duration;

use super::Invocation;
use crate::ast::{Command, Healthcheck, Heredoc, Run};
use crate::duration::parse_go_duration;
use crate::flags::{FlagKind, Flags, Spec};
use crate::json::{parse_string_array, JsonArray, NOT_STRINGS};
use crate::mount;
use crate::span::{Fault, Span};
use crate::words::split_first;

const RUN_FLAGS: &Spec = &[
    ("mount", FlagKind::Strings),
    ("network", FlagKind::String),
    ("security", FlagKind::String),
];

const HEALTHCHECK_FLAGS: &Spec = &[
    ("interval", FlagKind::String),
    ("timeout", FlagKind::String),
    ("start-period", FlagKind::String),
    ("start-interval", FlagKind::String),
    ("retries", FlagKind::String),
];

/// Docker refuses health check intervals shorter than this.
const MINIMUM_INTERVAL: Duration = Duration::from_millis(1);

/// Exec form if the text is a JSON array of strings, else shell form.
fn command(args: Span<'_>) -> Result<Command, Fault> {
    if args.is_empty() {
        return Ok(Command::Shell(String::new()));
    }
    match parse_string_array(args.text) {
        JsonArray::Strings(argv) => Ok(Command::Exec(argv)),
        JsonArray::NotStrings => Err(args.fault(NOT_STRINGS)),
        JsonArray::NotJson => Ok(Command::Shell(args.text.to_string())),
    }
}

pub(super) fn run(inv: &Invocation<'_>, heredocs: &[Heredoc]) -> Result<Run, Fault> {
    let flags = inv.flags(RUN_FLAGS)?;
    let mounts = flags
        .strings("mount")
        .iter()
        .map(|spec| mount::parse(&spec.text).map_err(|message| spec.fault(message)))
        .collect::<Result<_, _>>()?;
    let network = choice(&flags, "network", &["default", "none", "host"])?;
    let security = choice(&flags, "security", &["sandbox", "insecure"])?;
    let command = command(inv.args)?;
    let heredocs = match command {
        Command::Shell(_) => heredocs.to_vec(),
        Command::Exec(_) => Vec::new(),
    };
    Ok(Run {
        command,
        mounts,
        network,
        security,
        heredocs,
    })
}

/// `RUN --network=`, `--security=`: one of a few words.
fn choice(flags: &Flags, name: &str, allowed: &[&str]) -> Result<Option<String>, Fault> {
    let Some(word) = flags.string(name) else {
        return Ok(None);
    };
    if !allowed.contains(&word.text.as_str()) {
        return Err(word.fault(format!("unsupported {name} mode {:?}", word.text)));
    }
    Ok(Some(word.text.clone()))
}

/// `CMD` and `ENTRYPOINT`.
pub(super) fn cmd(inv: &Invocation<'_>) -> Result<Command, Fault> {
    inv.no_flags()?;
    command(inv.args)
}

/// `SHELL ["executable", "parameters"]`: JSON form only.
pub(super) fn shell(inv: &Invocation<'_>) -> Result<Vec<String>, Fault> {
    inv.no_flags()?;
    match parse_string_array(inv.args.text) {
        JsonArray::Strings(argv) if !argv.is_empty() => Ok(argv),
        JsonArray::NotStrings => Err(inv.args.fault(NOT_STRINGS)),
        JsonArray::NotJson if !inv.args.is_empty() => Err(inv
            .args
            .fault("SHELL requires the arguments to be in JSON form")),
        _ => Err(inv.fault("SHELL requires at least one argument")),
    }
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
pub(super) fn healthcheck(inv: &Invocation<'_>) -> Result<Healthcheck, Fault> {
    if inv.args.is_empty() {
        return Err(inv.fault("HEALTHCHECK requires at least one argument"));
    }
    let (kind, rest) = split_first(inv.args);
    if kind.text.eq_ignore_ascii_case("NONE") {
        return none(inv, rest);
    }
    let flags = inv.flags(HEALTHCHECK_FLAGS)?;
    if !kind.text.eq_ignore_ascii_case("CMD") {
        let kind_name = kind.text.to_uppercase();
        return Err(kind.fault(format!(
            "unknown type {kind_name:?} in HEALTHCHECK (try CMD)"
        )));
    }
    let command = command(rest)?;
    if matches!(&command, Command::Shell(s) if s.is_empty())
        || matches!(&command, Command::Exec(v) if v.is_empty())
    {
        return Err(kind.fault("missing command after HEALTHCHECK CMD"));
    }
    Ok(Healthcheck::Check {
        command,
        interval: interval(&flags, "interval")?,
        timeout: interval(&flags, "timeout")?,
        start_period: interval(&flags, "start-period")?,
        start_interval: interval(&flags, "start-interval")?,
        retries: retries(&flags)?,
    })
}

fn none(inv: &Invocation<'_>, rest: Span<'_>) -> Result<Healthcheck, Fault> {
    if !rest.is_empty() {
        return Err(rest.fault("HEALTHCHECK NONE takes no arguments"));
    }
    if let Some(flag) = inv.flags.first() {
        return Err(flag.fault(format!(
            "HEALTHCHECK NONE takes no options, but {} was given",
            flag.text
        )));
    }
    Ok(Healthcheck::None)
}

/// A duration option; zero (or empty) is unset, as Docker reads it.
fn interval(flags: &Flags, name: &str) -> Result<Option<Duration>, Fault> {
    let Some(word) = flags.string(name).filter(|w| !w.text.is_empty()) else {
        return Ok(None);
    };
    let nanos = parse_go_duration(&word.text).map_err(|e| word.fault(format!("--{name}: {e}")))?;
    if nanos == 0 {
        return Ok(None);
    }
    let duration = u64::try_from(nanos)
        .map(Duration::from_nanos)
        .unwrap_or_default();
    if duration < MINIMUM_INTERVAL {
        return Err(word.fault(format!("interval {name:?} cannot be less than 1ms")));
    }
    Ok(Some(duration))
}

/// `--retries=N`, an `int32` in Docker; zero is unset.
fn retries(flags: &Flags) -> Result<Option<u32>, Fault> {
    let Some(word) = flags.string("retries").filter(|w| !w.text.is_empty()) else {
        return Ok(None);
    };
    let value: i32 = word
        .text
        .parse()
        .map_err(|e| word.fault(format!("invalid --retries value {:?}: {e}", word.text)))?;
    let retries = u32::try_from(value)
        .map_err(|_| word.fault(format!("--retries cannot be negative ({value})")))?;
    Ok((retries != 0).then_some(retries))
}
