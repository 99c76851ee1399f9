//! A pure Dockerfile parser (<https://docs.docker.com/reference/dockerfile/>):
//! text in, typed instructions out ([`ast`]), with Docker's errors (line,
//! column and a caret). No I/O. Variable substitution is a separate step
//! ([`expand`]) that the builder runs once it knows the build arguments.

pub mod ast;
pub mod error;
pub mod expand;
mod parse;

mod duration;
mod flags;
mod heredoc;
mod instructions;
mod json;
mod lines;
mod mount;
mod pattern;
mod span;
mod suggest;
mod words;

pub use ast::*;
pub use error::{ExpandError, ParseError};
pub use parse::{parse, parse_instruction};
