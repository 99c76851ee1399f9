//! [`parse`] a Dockerfile into stages, or [`parse_instruction`] one
//! instruction (an `ONBUILD` trigger kept in an image's config), as
//! BuildKit's parser.Parse and instructions.Parse do it.

use crate::ast::{Dockerfile, Instruction, Kind, Location, Stage};
use crate::error::ParseError;
use crate::instructions::{parse_line, Context, FromLine, Parsed};
use crate::lines::{directives, RawInstruction, Reader, Source};
use crate::span::{Fault, Span};

/// Parses a whole Dockerfile: its directives, the `ARG`s before the first
/// `FROM`, and its stages. Words stay unexpanded.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let source = Source::new(src);
    let directives = directives(&source)?;
    let mut file = Dockerfile {
        directives,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    let mut instructions = 0;
    for raw in Reader::new(&source, file.directives.escape) {
        let raw = raw?;
        let (parsed, location) = parse_raw(&source, &raw, file.directives.escape)?;
        add(&mut file, parsed, location, &raw)
            .map_err(|fault| raw.logical.error(&source, fault))?;
        instructions += 1;
    }
    match (instructions, file.stages.is_empty()) {
        (0, _) => Err(source.error_at_end("file with no instructions")),
        (_, true) => Err(source.error_at_end("dockerfile contains no stages to build")),
        _ => Ok(file),
    }
}

/// Parses one instruction (not `FROM`), possibly followed by the bodies
/// of the heredocs it opens, e.g. an `ONBUILD` trigger as BuildKit stores
/// it: `RUN <<EOF\necho hi\nEOF`.
pub fn parse_instruction(text: &str, escape: char) -> Result<Instruction, ParseError> {
    let source = Source::new(text);
    let mut reader = Reader::new(&source, escape);
    let Some(raw) = reader.next() else {
        return Err(source.error_at_end("no instruction to parse"));
    };
    let raw = raw?;
    let (parsed, location) = parse_raw(&source, &raw, escape)?;
    if let Some(extra) = reader.next() {
        let extra = extra?;
        let fault = Fault::new(
            extra.logical.keyword_at(),
            "only one instruction was expected",
        );
        return Err(extra.logical.error(&source, fault));
    }
    match parsed {
        Parsed::Instruction(kind) => Ok(Instruction {
            location,
            original: original(&raw),
            kind,
        }),
        Parsed::From(_) => {
            let fault = Fault::new(
                raw.logical.keyword_at(),
                "FROM starts a build stage, it is not an instruction of one",
            );
            Err(raw.logical.error(&source, fault))
        }
    }
}

fn parse_raw(
    source: &Source<'_>,
    raw: &RawInstruction,
    escape: char,
) -> Result<(Parsed, Location), ParseError> {
    let location = Location {
        start_line: raw.logical.start + 1,
        end_line: raw.end + 1,
    };
    let context = Context {
        escape,
        heredocs: &raw.heredocs,
        location,
    };
    let parsed = parse_line(Span::new(&raw.logical.text, 0), &context)
        .map_err(|f| raw.logical.error(source, f))?;
    Ok((parsed, location))
}

/// The instruction as written: continuation lines joined, without the
/// heredoc bodies.
fn original(raw: &RawInstruction) -> String {
    raw.logical.text.trim().to_string()
}

/// Adds a parsed line to the file: a new stage, an instruction of the
/// current one, or a meta `ARG` before the first stage.
fn add(
    file: &mut Dockerfile,
    parsed: Parsed,
    location: Location,
    raw: &RawInstruction,
) -> Result<(), Fault> {
    let kind = match parsed {
        Parsed::From(from) => {
            file.stages.push(stage(from, location, raw));
            return Ok(());
        }
        Parsed::Instruction(kind) => kind,
    };
    match (file.stages.last_mut(), kind) {
        (Some(stage), kind) => stage.instructions.push(Instruction {
            location,
            original: original(raw),
            kind,
        }),
        (None, Kind::Arg(args)) => file.meta_args.extend(args),
        (None, _) => {
            return Err(Fault::new(
                raw.logical.keyword_at(),
                "no build stage in current context (only ARG may come before the first FROM)",
            ))
        }
    }
    Ok(())
}

fn stage(from: FromLine, location: Location, raw: &RawInstruction) -> Stage {
    Stage {
        name: from.name,
        base: from.base,
        platform: from.platform,
        location,
        original: original(raw),
        instructions: Vec::new(),
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
