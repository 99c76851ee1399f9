//! Starting images from built prefixes (`--cached`), and the plan's tree
//! cut into Dockerfiles (`--dockerfiles`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use berth_plan::layout::segments;
use berth_plan::prefix::{fits, longest, start_from, Built};
use berth_plan::problem::{ImageSpec, StepSpec};
use berth_plan::{Limits, Problem};

fn problem(steps: &[(&str, f64, &[&str])], images: &[(&str, &[&str])]) -> Problem {
    Problem::allowing_empty_images(
        steps
            .iter()
            .map(|(n, c, after)| StepSpec {
                name: (*n).into(),
                cost: Some(*c),
                after: after.iter().map(|a| (*a).into()).collect(),
                ..StepSpec::default()
            })
            .collect(),
        images
            .iter()
            .map(|(n, s)| ImageSpec {
                name: (*n).into(),
                base: "base".into(),
                steps: s.iter().map(|s| (*s).into()).collect(),
            })
            .collect(),
    )
    .unwrap()
}

fn built(id: &str, steps: &[usize]) -> Built {
    Built {
        id: id.into(),
        base: "base".into(),
        steps: steps.to_vec(),
    }
}

#[test]
fn an_image_starts_from_the_built_prefix_that_saves_the_most() {
    // a=0 b=1 c=2 d=3; d must follow c.
    let p = problem(
        &[
            ("a", 5.0, &[]),
            ("b", 7.0, &[]),
            ("c", 1.0, &[]),
            ("d", 2.0, &["c"]),
        ],
        &[("new", &["a", "b", "c", "d"]), ("other", &["c", "d"])],
    );
    let cache = [
        built("ab", &[0, 1]),
        built("abc", &[0, 1, 2]),
        built("d-first", &[3]),
        built("b", &[1]),
    ];
    assert!(!fits(&p, 0, &cache[2]), "d before c breaks the precedence");
    assert!(!fits(&p, 1, &cache[0]), "other needs no a");
    let mut elsewhere = built("x", &[0]);
    elsewhere.base = "other".into();
    assert!(!fits(&p, 0, &elsewhere));
    assert_eq!(longest(&p, 0, &cache).unwrap().id, "abc");
    assert_eq!(longest(&p, 1, &cache), None);
    let chosen = [longest(&p, 0, &cache), longest(&p, 1, &cache)];
    let started = start_from(&p, &chosen).unwrap();
    assert_eq!(started.starts, [3, 0]);
    let s = berth_plan::solve(&started.problem, &Limits::default());
    // new: d only (2); other: c, d (3).
    assert_eq!(s.cost, 5.0);
    let plan = started.expand(&s.plan);
    plan.check(&p).unwrap();
    assert_eq!(plan.orders[0], [0, 1, 2, 3]);
}

#[test]
fn images_on_the_same_built_prefix_share_what_follows() {
    let p = problem(
        &[("a", 5.0, &[]), ("b", 7.0, &[]), ("c", 3.0, &[])],
        &[("one", &["a", "b", "c"]), ("two", &["c", "a"])],
    );
    let cache = [built("a", &[0])];
    let chosen = [longest(&p, 0, &cache), longest(&p, 1, &cache)];
    let started = start_from(&p, &chosen).unwrap();
    let s = berth_plan::solve(&started.problem, &Limits::default());
    // After a: c shared (3), then b for one (7).
    assert_eq!(s.cost, 10.0);
    let plan = started.expand(&s.plan);
    plan.check(&p).unwrap();
    assert_eq!(plan.orders[0], [0, 2, 1]);
    assert_eq!(plan.orders[1], [0, 2]);
}

#[test]
fn segments_cut_the_tree_where_it_branches_or_an_image_ends() {
    // x y shared; one ends after y z; two after y w; three is x y.
    let p = problem(
        &[
            ("x", 1.0, &[]),
            ("y", 1.0, &[]),
            ("z", 1.0, &[]),
            ("w", 1.0, &[]),
        ],
        &[
            ("one", &["x", "y", "z"]),
            ("two", &["x", "y", "w"]),
            ("three", &["y", "x"]),
            ("bare", &[]),
        ],
    );
    let s = berth_plan::solve(&p, &Limits::default());
    let segs = segments(&p, &s.plan);
    // Three with steps, and the bare image's own (last, no steps).
    assert_eq!(segs.len(), 4, "{segs:?}");
    let (bare, segs) = segs.split_last().unwrap();
    assert_eq!((bare.parent, bare.steps.len()), (None, 0));
    assert_eq!(bare.images, [3]);
    let root = &segs[0];
    assert_eq!(
        (root.parent, root.steps.len(), root.images.clone()),
        (None, 2, vec![2])
    );
    for seg in &segs[1..] {
        assert_eq!(seg.parent, Some(0));
        assert_eq!(seg.steps.len(), 1);
        assert_eq!(seg.images.len(), 1);
    }
    // Each image's order is its segments' steps, root first.
    for (i, order) in s.plan.orders.iter().enumerate().take(3) {
        let mut at = segs.iter().position(|g| g.images.contains(&i)).unwrap();
        let mut steps = segs[at].steps.clone();
        while let Some(parent) = segs[at].parent {
            steps.splice(0..0, segs[parent].steps.clone());
            at = parent;
        }
        assert_eq!(&steps, order);
    }
}
