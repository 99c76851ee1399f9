//! A family of Dockerfiles planned and written back.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use berth_plan::dockerfiles::{read, Options, Source};
use berth_plan::{Limits, PlanError};

fn src(name: &str, text: &str) -> Source {
    Source {
        name: name.into(),
        context: format!("/ctx/{name}"),
        text: text.into(),
    }
}

fn unknown(_: &str) -> Option<f64> {
    None
}

fn plan(sources: &[Source], opts: Options) -> (f64, Vec<String>) {
    let (problem, family) = read(sources, opts, &unknown).unwrap();
    let s = berth_plan::solve(&problem, &Limits::default());
    assert!(s.optimal);
    s.plan.check(&problem).unwrap();
    (s.cost, family.write(&s.plan))
}

const A: &str = "\
# syntax=docker/dockerfile:1
FROM debian:12
ENV LANG=C.UTF-8
# berth: reorderable
RUN apt-get install -y curl
# the compiler
RUN apt-get install -y gcc \\
    make
RUN pip install numpy
CMD [\"sh\"]
# the end
";

const B: &str = "\
FROM debian:12
ENV LANG=C.UTF-8
# berth: reorderable
RUN pip install numpy
RUN apt-get install -y gcc \\
    make
RUN apt-get install -y git
CMD [\"sh\"]
";

#[test]
fn marked_runs_are_reordered_so_the_family_shares_them() {
    let (cost, files) = plan(&[src("a", A), src("b", B)], Options::default());
    // Shared: ENV (no layer: 0), then gcc and numpy (in some order) once
    // each; then curl, git, and each CMD (0).
    assert_eq!(cost, 4.0);
    let runs = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("RUN"))
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (runs(&files[0]), runs(&files[1]));
    assert_eq!(a[..2], b[..2], "{a:?} {b:?}");
    assert_eq!(a[2], "RUN apt-get install -y curl");
    assert_eq!(b[2], "RUN apt-get install -y git");
    // Every line kept; the marker stays at the run's top, a comment
    // moves with its RUN, continuations stay whole, barriers stay put.
    let lines: Vec<&str> = files[0].lines().collect();
    assert_eq!(lines.len(), A.lines().count());
    assert_eq!(&lines[..4], &A.lines().collect::<Vec<_>>()[..4]);
    let gcc = lines.iter().position(|l| l.contains("gcc")).unwrap();
    assert_eq!(lines[gcc - 1], "# the compiler");
    assert_eq!(lines[gcc + 1], "    make");
    assert_eq!(&lines[lines.len() - 2..], ["CMD [\"sh\"]", "# the end"]);
}

#[test]
fn unmarked_runs_stay_as_written_unless_assumed_reorderable() {
    let strip = |t: &str| t.replace("# berth: reorderable\n", "");
    let family = [src("a", &strip(A)), src("b", &strip(B))];
    let (cost, files) = plan(&family, Options::default());
    // Only the ENV is shared: 1 + 3 RUNs + CMD each.
    assert_eq!(cost, 6.0);
    assert_eq!(files[0], strip(A));
    assert_eq!(files[1], strip(B));
    let (cost, _) = plan(
        &family,
        Options {
            assume_reorderable: true,
        },
    );
    assert_eq!(cost, 4.0);
}

#[test]
fn a_step_after_different_barriers_is_not_shared() {
    let a = "FROM x\nENV A=1\n# berth: reorderable\nRUN one\nRUN two\n";
    let b = "FROM x\nENV A=2\n# berth: reorderable\nRUN one\nRUN two\n";
    let (problem, _) = read(&[src("a", a), src("b", b)], Options::default(), &unknown).unwrap();
    assert_eq!(problem.steps.len(), 6, "{:?}", problem.steps);
    let (cost, _) = plan(&[src("a", a), src("b", b)], Options::default());
    assert_eq!(cost, 4.0);
}

#[test]
fn copies_from_different_contexts_are_different_steps() {
    let text = "FROM x\n# berth: reorderable\nRUN one\nRUN two\nCOPY . /app\n";
    let mut same = src("b", text);
    same.context = "/ctx/a".into();
    let (problem, _) = read(&[src("a", text), same], Options::default(), &unknown).unwrap();
    assert_eq!(problem.steps.len(), 3);
    let (problem, _) = read(
        &[src("a", text), src("b", text)],
        Options::default(),
        &unknown,
    )
    .unwrap();
    assert_eq!(problem.steps.len(), 4);
}

#[test]
fn costs_come_from_the_cache_else_one_per_layer_and_zero_for_metadata() {
    let a = "FROM x\nENV A=1\nRUN slow\nRUN fast\n";
    let known = |text: &str| (text == "RUN slow").then_some(30.0);
    let (problem, _) = read(&[src("a", a)], Options::default(), &known).unwrap();
    let costs: Vec<f64> = problem.steps.iter().map(|s| s.cost).collect();
    assert_eq!(costs, [0.0, 30.0, 1.0]);
}

#[test]
fn bad_families_are_refused_naming_the_file() {
    let err = |sources: &[Source], opts| read(sources, opts, &unknown).unwrap_err();
    let e = err(
        &[src("multi", "FROM a AS one\nRUN x\nFROM one\nRUN y\n")],
        Options::default(),
    );
    assert!(
        matches!(&e, PlanError::Dockerfile { name, message } if name == "multi" && message.contains("2 stages")),
        "{e}"
    );
    let e = err(
        &[src("m", "FROM a\n# berth: reorderable\nENV A=1\nRUN x\n")],
        Options::default(),
    );
    assert_eq!(
        e.to_string(),
        "m: line 2: \"# berth: reorderable\" must be just above a RUN"
    );
    let e = err(&[src("p", "FROM a\nRUN --bogus x\n")], Options::default());
    assert!(e.to_string().starts_with("p: Dockerfile:2:"), "{e}");
    let e = err(
        &[src("d", "FROM a\n# berth: reorderable\nRUN x\nRUN x\n")],
        Options::default(),
    );
    assert!(e.to_string().contains("twice"), "{e}");
    let e = err(
        &[src("a", "FROM a\n"), src("a", "FROM b\n")],
        Options::default(),
    );
    assert_eq!(e.to_string(), "image \"a\" is defined twice");
}

#[test]
fn files_with_different_bases_share_nothing() {
    let a = "FROM debian:12\n# berth: reorderable\nRUN one\nRUN two\n";
    let b = "FROM alpine\n# berth: reorderable\nRUN two\nRUN one\n";
    let (cost, files) = plan(&[src("a", a), src("b", b)], Options::default());
    assert_eq!(cost, 4.0);
    assert!(files[1].starts_with("FROM alpine\n"));
}
