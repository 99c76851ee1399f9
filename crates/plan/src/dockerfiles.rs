//! A family of Dockerfiles as a planning problem, and the family written
//! back in the planned orders.
//!
//! Each file is one image. Its instructions keep their places except in
//! runs of consecutive `RUN`s the file marks reorderable (a comment line
//! `# berth: reorderable` just above the run's first `RUN`), or all such
//! runs with [`Options::assume_reorderable`]: any other instruction is a
//! barrier. A step is an instruction *in its context*, the set of steps
//! before its run: two files share a layer only when everything before it
//! is the same, so `RUN make` after different `ENV`s is two steps. That
//! makes every precedence global (a step's context always precedes it),
//! which is what the planner takes.

use std::collections::HashMap;
use std::ops::Range;

use berth_dockerfile::ast::Kind;

use crate::error::PlanError;
use crate::plan::Plan;
use crate::problem::{ImageSpec, Problem, StepSpec};

/// The marker that makes a run of `RUN`s reorderable.
const MARKER: &str = "berth: reorderable";

/// One Dockerfile of the family.
#[derive(Debug, Clone)]
pub struct Source {
    /// The image's name (unique in the family).
    pub name: String,
    /// Where its `COPY`/`ADD` read from: the same text in two contexts is
    /// two steps.
    pub context: String,
    pub text: String,
}

/// How the files are read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Every run of consecutive `RUN`s is reorderable, marked or not.
    pub assume_reorderable: bool,
}

/// The family, kept to be written back in a plan's orders.
#[derive(Debug, Clone)]
pub struct Family {
    files: Vec<File>,
    /// Each image's base as its `FROM` names it (unexpanded).
    pub bases: Vec<String>,
    /// Each step's instruction as written (continuations, heredocs).
    pub texts: Vec<String>,
}

#[derive(Debug, Clone)]
struct File {
    lines: Vec<String>,
    /// Its parser directives, as lines (`# escape=` must head any file
    /// made of its instructions).
    directives: String,
    /// The `FROM`'s image.
    base: String,
    /// Up to the end of the `FROM` line.
    head: Range<usize>,
    /// After the last instruction (trailing comments).
    tail: Range<usize>,
    /// Per step of the image: its lines (with the comments above it) and
    /// its reorderable run, if any.
    items: HashMap<usize, Item>,
    /// Per reorderable run: the lines above its first `RUN` up to the
    /// marker (they stay at the run's top).
    headers: Vec<Range<usize>>,
}

#[derive(Debug, Clone)]
struct Item {
    lines: Range<usize>,
    run: Option<usize>,
}

/// An instruction of one file, before steps are named.
struct Parsed {
    ident: String,
    /// Continuations joined: how the build cache records it.
    original: String,
    text: String,
    cost: f64,
    lines: Range<usize>,
    run: Option<usize>,
}

/// Reads the family into a problem (and what writes it back). `cost_of`
/// gives a step's cost from its instruction when known (the build
/// cache); otherwise a `RUN`, `COPY` or `ADD` costs 1, any other
/// instruction (no layer to build) 0.
pub fn read(
    sources: &[Source],
    opts: Options,
    cost_of: &dyn Fn(&str) -> Option<f64>,
) -> Result<(Problem, Family), PlanError> {
    let mut steps = Steps::default();
    let mut images = Vec::new();
    let mut files = Vec::new();
    let mut bases = Vec::new();
    for src in sources {
        let (base, mut file, parsed) = read_one(src, opts)?;
        bases.push(file.base.clone());
        let mut order = Vec::new();
        for (p, step) in parsed.iter().zip(steps.add_image(&parsed, cost_of)) {
            if order.contains(&step) {
                return Err(dockerfile_error(
                    &src.name,
                    p.lines.end,
                    "the same instruction twice in one reorderable run".into(),
                ));
            }
            order.push(step);
            let item = Item {
                lines: p.lines.clone(),
                run: p.run,
            };
            file.items.insert(step, item);
        }
        images.push(ImageSpec {
            name: src.name.clone(),
            base,
            steps: order.iter().map(|&s| steps.specs[s].name.clone()).collect(),
        });
        files.push(file);
    }
    let problem = Problem::allowing_empty_images(steps.specs, images)?;
    let texts = steps.texts;
    Ok((
        problem,
        Family {
            files,
            bases,
            texts,
        },
    ))
}

/// The family's steps: one per instruction in its context (the sorted
/// steps of every earlier run), each after the whole run before its own.
#[derive(Default)]
struct Steps {
    specs: Vec<StepSpec>,
    texts: Vec<String>,
    index: HashMap<(Vec<usize>, String), usize>,
    /// How many steps show each first line (later ones are numbered).
    shown: HashMap<String, usize>,
}

impl Steps {
    /// One image's instructions as steps, in order.
    fn add_image(
        &mut self,
        parsed: &[Parsed],
        cost_of: &dyn Fn(&str) -> Option<f64>,
    ) -> Vec<usize> {
        let mut context: Vec<usize> = Vec::new();
        let mut run: Vec<usize> = Vec::new();
        let mut previous: Vec<usize> = Vec::new();
        let mut current = None;
        let mut out = Vec::with_capacity(parsed.len());
        for p in parsed {
            if p.run.is_none() || p.run != current {
                context.extend(&run);
                context.sort_unstable();
                previous = std::mem::take(&mut run);
                current = p.run;
            }
            let step = self.intern(&context, p, cost_of);
            for &b in &previous {
                let before = self.specs[b].name.clone();
                if !self.specs[step].after.contains(&before) {
                    self.specs[step].after.push(before);
                }
            }
            run.push(step);
            out.push(step);
        }
        out
    }

    /// The step of `p` in `context`, made the first time.
    fn intern(
        &mut self,
        context: &[usize],
        p: &Parsed,
        cost_of: &dyn Fn(&str) -> Option<f64>,
    ) -> usize {
        let key = (context.to_vec(), p.ident.clone());
        if let Some(&s) = self.index.get(&key) {
            return s;
        }
        let shown = first_line(&p.text);
        let count = self.shown.entry(shown.clone()).or_insert(0);
        *count += 1;
        let name = match *count {
            1 => shown,
            n => format!("{shown} [{n}]"),
        };
        self.specs.push(StepSpec {
            name,
            command: Some(p.original.clone()),
            cost: Some(cost_of(&p.original).unwrap_or(p.cost)),
            size: 0,
            after: Vec::new(),
        });
        self.texts.push(p.text.clone());
        self.index.insert(key, self.specs.len() - 1);
        self.specs.len() - 1
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

fn dockerfile_error(name: &str, line: usize, message: String) -> PlanError {
    PlanError::Dockerfile {
        name: name.to_owned(),
        message: format!("line {line}: {message}"),
    }
}

/// One file: its base (what precedes its instructions), its layout, and
/// its instructions in order.
fn read_one(src: &Source, opts: Options) -> Result<(String, File, Vec<Parsed>), PlanError> {
    let file = berth_dockerfile::parse(&src.text).map_err(|e| PlanError::Dockerfile {
        name: src.name.clone(),
        message: e.to_string(),
    })?;
    let [stage] = file.stages.as_slice() else {
        return Err(PlanError::Dockerfile {
            name: src.name.clone(),
            message: format!(
                "{} stages: only single-stage Dockerfiles are planned",
                file.stages.len()
            ),
        });
    };
    let lines: Vec<String> = src.text.lines().map(str::to_owned).collect();
    // Lines are 1-based in locations; ranges here are 0-based.
    let head = 0..stage.location.end_line;
    let base = significant(&lines[head.clone()]);
    let mut directives = String::new();
    if let Some(syntax) = &file.directives.syntax {
        directives.push_str(&format!("# syntax={syntax}\n"));
    }
    if file.directives.escape != '\\' {
        directives.push_str(&format!("# escape={}\n", file.directives.escape));
    }
    let mut layout = File {
        lines: Vec::new(),
        directives,
        base: stage.base.clone(),
        head,
        tail: 0..0,
        items: HashMap::new(),
        headers: Vec::new(),
    };
    let mut parsed = Vec::new();
    let mut from = stage.location.end_line;
    let mut run: Option<usize> = None;
    let mut previous_was_run = false;
    for instr in &stage.instructions {
        let start = instr.location.start_line - 1;
        let end = instr.location.end_line;
        let is_run = matches!(instr.kind, Kind::Run(_));
        let marker = (from..start).rev().find(|&l| is_marker(&lines[l]));
        let mut lines_from = from;
        if let Some(m) = marker {
            if !is_run {
                return Err(dockerfile_error(
                    &src.name,
                    m + 1,
                    format!("\"# {MARKER}\" must be just above a RUN"),
                ));
            }
            layout.headers.push(from..m + 1);
            run = Some(layout.headers.len() - 1);
            lines_from = m + 1;
        } else if !(is_run && previous_was_run) {
            run = None;
            if is_run && opts.assume_reorderable {
                layout.headers.push(from..from);
                run = Some(layout.headers.len() - 1);
            }
        }
        if !is_run {
            run = None;
        }
        previous_was_run = is_run;
        let text = lines[start..end].join("\n");
        let ident = match &instr.kind {
            Kind::Copy(c) | Kind::Add(c) if c.from.is_none() => {
                format!("{text}\n# context: {}", src.context)
            }
            _ => text.clone(),
        };
        let builds = matches!(instr.kind, Kind::Run(_) | Kind::Copy(_) | Kind::Add(_));
        parsed.push(Parsed {
            ident,
            original: instr.original.clone(),
            text,
            cost: if builds { 1.0 } else { 0.0 },
            lines: lines_from..end,
            run,
        });
        from = end;
    }
    layout.tail = from..lines.len();
    layout.lines = lines;
    Ok((base, layout, parsed))
}

fn is_marker(line: &str) -> bool {
    line.trim_start()
        .strip_prefix('#')
        .is_some_and(|rest| rest.trim().eq_ignore_ascii_case(MARKER))
}

/// The lines that are not blank or comments, joined: what makes two
/// heads the same base.
fn significant(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Family {
    /// Each image's Dockerfile with its steps in the plan's order: every
    /// line kept, only the instructions of reorderable runs moved (each
    /// with the comments above it).
    pub fn write(&self, plan: &Plan) -> Vec<String> {
        self.files
            .iter()
            .zip(&plan.orders)
            .map(|(file, order)| file.write(order))
            .collect()
    }
}

impl Family {
    /// Image `i`'s file up to its `FROM` line (directives, `ARG`s before
    /// it), ending in a newline.
    pub fn head(&self, image: usize) -> String {
        let f = &self.files[image];
        let mut text = f.lines[f.head.clone()].join("\n");
        text.push('\n');
        text
    }

    /// Image `i`'s parser directives, as lines.
    pub fn directives(&self, image: usize) -> &str {
        &self.files[image].directives
    }
}

impl File {
    fn write(&self, order: &[usize]) -> String {
        let mut out: Vec<&str> = Vec::new();
        let lines = |r: &Range<usize>| self.lines[r.clone()].iter().map(String::as_str);
        out.extend(lines(&self.head));
        let mut headed = Vec::new();
        for step in order {
            let Some(item) = self.items.get(step) else {
                continue;
            };
            if let Some(run) = item.run {
                if !headed.contains(&run) {
                    headed.push(run);
                    out.extend(lines(&self.headers[run]));
                }
            }
            out.extend(lines(&item.lines));
        }
        out.extend(lines(&self.tail));
        let mut text = out.join("\n");
        text.push('\n');
        text
    }
}
