//! The typed form of a Dockerfile
//! (<https://docs.docker.com/reference/dockerfile/>). Words are kept as
//! written: variables are expanded by the builder with [`crate::expand`],
//! once it knows the build arguments and the stage's environment.

use std::time::Duration;

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// `ARG`s before the first `FROM`: usable in `FROM` lines only (and in
    /// a stage that declares them again without a value).
    pub meta_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

/// Parser directives (`# syntax=…`, `# escape=…`, `# check=…`) from the
/// top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub syntax: Option<String>,
    /// The escape character: `\` unless `# escape=` says `` ` ``.
    pub escape: char,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Self {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// One build stage: a `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lowercased as Docker does.
    pub name: Option<String>,
    /// The base: an image reference, `scratch`, or an earlier stage's name
    /// or index; unexpanded (meta `ARG`s apply).
    pub base: String,
    /// `--platform=`, unexpanded.
    pub platform: Option<String>,
    /// Where the `FROM` is.
    pub location: Location,
    /// The `FROM` line as written (continuations joined).
    pub original: String,
    pub instructions: Vec<Instruction>,
}

/// Where an instruction is in the file (1-based lines). `end_line` is the
/// last line of its continuation, or the terminator of its last heredoc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub start_line: usize,
    pub end_line: usize,
}

/// One instruction of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub location: Location,
    /// The instruction as written, continuations joined and comment lines
    /// dropped, heredoc bodies excluded (e.g. `RUN echo hi`).
    pub original: String,
    pub kind: Kind,
}

/// The instructions, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Run(Run),
    Copy(Copy),
    /// `ADD`: `COPY` plus URLs and auto-extracted local tarballs.
    Add(Copy),
    /// `ENV k=v …` (or the legacy `ENV k v`); values unexpanded.
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    /// Ports as written (`80`, `53/udp`, `${PORT}`); unexpanded.
    Expose(Vec<String>),
    /// Paths; unexpanded.
    Volume(Vec<String>),
    Label(Vec<KeyValue>),
    Cmd(Command),
    Entrypoint(Command),
    /// `SHELL ["executable", "args"…]` (JSON form only).
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// `ONBUILD <instruction>`: the trigger as written, and parsed.
    Onbuild(Box<Instruction>),
    /// `MAINTAINER` (deprecated): the image's author.
    Maintainer(String),
}

/// A `key=value` pair (`ENV`, `LABEL`), both unexpanded and as written:
/// quotes and escapes are still in them (`"a b"`) and go when expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// Unexpanded.
    pub default: Option<String>,
}

/// The exec form (`["a", "b"]`) or the shell form (`a b`) of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    /// The command line as written, continuations joined.
    Shell(String),
}

/// `RUN [--mount=…] [--network=…] [--security=…] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    pub mounts: Vec<Mount>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--security=sandbox|insecure`.
    pub security: Option<String>,
    /// Heredocs the command line opens (`RUN <<EOF`), in order.
    pub heredocs: Vec<Heredoc>,
}

/// A `RUN --mount=` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountKind,
    /// `target=` (also `dst=`, `destination=`); unexpanded. Empty when not
    /// given, which only secret and ssh mounts allow.
    pub target: String,
    /// `source=` (also `src=`): a path in `from` (or the context).
    pub source: Option<String>,
    /// `from=`: a stage or image; the context when absent.
    pub from: Option<String>,
    /// `id=` of a cache mount (the target when absent).
    pub id: Option<String>,
    /// `ro`/`readonly` (`rw`/`readwrite` clears it). Without either, true
    /// for bind, secret and ssh mounts, false for cache and tmpfs ones, as
    /// in BuildKit.
    pub readonly: bool,
    /// `sharing=shared|private|locked` of a cache mount.
    pub sharing: Sharing,
    /// `mode=` (octal), `uid=`, `gid=` of a cache, secret or ssh mount
    /// (BuildKit refuses them on the others).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `size=` of a tmpfs mount, in bytes.
    pub size: Option<u64>,
    /// `required=` of a secret or ssh mount.
    pub required: bool,
}

/// What a `RUN --mount` mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// `COPY`/`ADD [--from=…] [--chown=…] [--chmod=…] [--link] … src… dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Sources as written (unexpanded); heredoc sources are in `heredocs`.
    pub sources: Vec<String>,
    /// The destination as written (unexpanded).
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--parents` (keep the sources' directory structure).
    pub parents: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// `ADD --keep-git-dir`.
    pub keep_git_dir: bool,
    /// `ADD --checksum=` of a remote source.
    pub checksum: Option<String>,
    /// Inline files (`COPY <<EOF /dest`): each becomes a file named by its
    /// delimiter.
    pub heredocs: Vec<Heredoc>,
}

/// A here-document (`<<EOF … EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, unquoted.
    pub name: String,
    /// The body, each line ending in `\n`; leading tabs stripped for `<<-`.
    pub content: String,
    /// Variables expand in the body (the delimiter was not quoted).
    pub expand: bool,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD …`. A zero duration or
/// `--retries=0` is `None`: Docker reads zero as "not set".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check {
        command: Command,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

impl Kind {
    /// The instruction's keyword, upper case (`RUN`, `COPY`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::Run(_) => "RUN",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Workdir(_) => "WORKDIR",
            Kind::User(_) => "USER",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::Label(_) => "LABEL",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Shell(_) => "SHELL",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}
