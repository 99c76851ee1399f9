//! From one logical line to a typed instruction, as BuildKit's
//! instructions.ParseInstruction does it
//! (frontend/dockerfile/instructions/parse.go), with Docker's messages.
//! Every word stays unexpanded.

mod command;
mod copy;
mod simple;

use crate::ast::{Heredoc, Instruction, Kind, Location};
use crate::flags::{self, Flags, Spec};
use crate::span::{Fault, Span, Word};
use crate::suggest::suggest;
use crate::words::{split_first, split_whitespace};

/// What an instruction is parsed with, besides its line.
#[derive(Debug)]
pub(crate) struct Context<'h> {
    /// The escape character (`# escape=`).
    pub escape: char,
    /// The bodies of the heredocs the line opens, in order.
    pub heredocs: &'h [Heredoc],
    /// Where the line is (for the trigger of an `ONBUILD`).
    pub location: Location,
}

/// A parsed line: a stage's start, or an instruction of a stage.
#[derive(Debug)]
pub(crate) enum Parsed {
    From(FromLine),
    Instruction(Kind),
}

/// `FROM [--platform=…] base [AS name]`.
#[derive(Debug)]
pub(crate) struct FromLine {
    pub base: String,
    pub name: Option<String>,
    pub platform: Option<String>,
}

const NAMES: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A line cut into keyword, flag words and arguments.
#[derive(Debug)]
struct Invocation<'a> {
    keyword: Span<'a>,
    flags: Vec<Word>,
    args: Span<'a>,
}

impl<'a> Invocation<'a> {
    fn split(line: Span<'a>) -> Self {
        let (keyword, rest) = split_first(line);
        let (flags, args) = flags::extract(rest);
        Self {
            keyword,
            flags,
            args: args.trim(),
        }
    }

    fn flags(&self, spec: &Spec) -> Result<Flags, Fault> {
        flags::parse(&self.flags, spec)
    }

    fn no_flags(&self) -> Result<(), Fault> {
        self.flags(&[]).map(drop)
    }

    /// An error about the instruction as a whole, at its keyword.
    fn fault(&self, message: impl Into<String>) -> Fault {
        self.keyword.fault(message)
    }
}

pub(crate) fn parse_line(line: Span<'_>, context: &Context<'_>) -> Result<Parsed, Fault> {
    let inv = Invocation::split(line);
    let escape = context.escape;
    let kind = match inv.keyword.text.to_ascii_lowercase().as_str() {
        "from" => return from(&inv).map(Parsed::From),
        "run" => Kind::Run(command::run(&inv, context.heredocs)?),
        "cmd" => Kind::Cmd(command::cmd(&inv)?),
        "entrypoint" => Kind::Entrypoint(command::cmd(&inv)?),
        "shell" => Kind::Shell(command::shell(&inv)?),
        "healthcheck" => Kind::Healthcheck(command::healthcheck(&inv)?),
        "copy" => Kind::Copy(copy::copy(&inv, context.heredocs, false)?),
        "add" => Kind::Add(copy::copy(&inv, context.heredocs, true)?),
        "env" => Kind::Env(simple::key_values(&inv, "ENV", escape)?),
        "label" => Kind::Label(simple::key_values(&inv, "LABEL", escape)?),
        "arg" => Kind::Arg(simple::arg(&inv, escape)?),
        "workdir" => Kind::Workdir(simple::one(&inv, "WORKDIR")?),
        "user" => Kind::User(simple::one(&inv, "USER")?),
        "stopsignal" => Kind::StopSignal(simple::one(&inv, "STOPSIGNAL")?),
        "maintainer" => Kind::Maintainer(simple::one(&inv, "MAINTAINER")?),
        "expose" => Kind::Expose(simple::expose(&inv)?),
        "volume" => Kind::Volume(simple::volume(&inv)?),
        "onbuild" => onbuild(&inv, context)?,
        _ => return Err(unknown(&inv)),
    };
    Ok(Parsed::Instruction(kind))
}

fn unknown(inv: &Invocation<'_>) -> Fault {
    let keyword = inv.keyword.text;
    match suggest(keyword, &NAMES, false) {
        Some(near) => inv.fault(format!(
            "unknown instruction: {keyword} (did you mean {near}?)"
        )),
        None => inv.fault(format!("unknown instruction: {keyword}")),
    }
}

fn from(inv: &Invocation<'_>) -> Result<FromLine, Fault> {
    let args = split_whitespace(inv.args);
    let name = stage_name(inv, &args)?;
    let flags = inv.flags(&[("platform", flags::FlagKind::String)])?;
    let base = args.into_iter().next().map(|w| w.text).unwrap_or_default();
    Ok(FromLine {
        base,
        name,
        platform: flags.string("platform").map(|w| w.text.clone()),
    })
}

fn stage_name(inv: &Invocation<'_>, args: &[Word]) -> Result<Option<String>, Fault> {
    match args {
        [_] => Ok(None),
        [_, keyword, name] if keyword.text.eq_ignore_ascii_case("as") => {
            let lower = name.text.to_lowercase();
            let mut chars = lower.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                });
            if !valid {
                return Err(name.fault(format!(
                    "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                    name.text
                )));
            }
            Ok(Some(lower))
        }
        _ => Err(inv.fault("FROM requires either one or three arguments")),
    }
}

/// `ONBUILD <instruction>`: the trigger is parsed now, so that a mistake
/// shows in this Dockerfile rather than in the images built from it.
fn onbuild(inv: &Invocation<'_>, context: &Context<'_>) -> Result<Kind, Fault> {
    if inv.args.is_empty() {
        return Err(inv.fault("ONBUILD requires at least one argument"));
    }
    inv.no_flags()?;
    let (trigger, _) = split_first(inv.args);
    match trigger.text.to_uppercase().as_str() {
        "ONBUILD" => {
            return Err(trigger.fault("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
        }
        name @ ("FROM" | "MAINTAINER") => {
            return Err(trigger.fault(format!("{name} isn't allowed as an ONBUILD trigger")))
        }
        _ => {}
    }
    let Parsed::Instruction(kind) = parse_line(inv.args, context)? else {
        return Err(trigger.fault("FROM isn't allowed as an ONBUILD trigger"));
    };
    Ok(Kind::Onbuild(Box::new(Instruction {
        location: context.location,
        original: inv.args.text.to_string(),
        kind,
    })))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
