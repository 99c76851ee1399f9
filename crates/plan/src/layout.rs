//! The plan's tree as Dockerfiles: one per shared node and per image.
//! Chains of layers with one child and no image ending inside them are
//! one segment; a segment starts `FROM` its parent segment (or the base)
//! and ends where the tree branches or an image is complete.

use crate::plan::Plan;
use crate::problem::Problem;

/// A run of layers built by one Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The segment it starts from; none: the base image.
    pub parent: Option<usize>,
    pub base: String,
    /// Its steps, in build order.
    pub steps: Vec<usize>,
    /// The images complete at its end.
    pub images: Vec<usize>,
}

/// The segments of `plan`, parents first.
pub fn segments(problem: &Problem, plan: &Plan) -> Vec<Segment> {
    let nodes = plan.tree(problem);
    let mut children = vec![0usize; nodes.len()];
    for n in &nodes {
        if let Some(p) = n.parent {
            children[p] += 1;
        }
    }
    // A node ends a segment where the tree branches, an image ends, or
    // nothing follows.
    let ends = |i: usize| children[i] != 1 || !nodes[i].images.is_empty();
    let mut segment_of: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut out: Vec<Segment> = Vec::new();
    // Nodes come parents first: a node opens a segment when its parent
    // ended one (or it has none), else continues its parent's.
    let mut open: Vec<Option<usize>> = vec![None; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let seg = match n.parent.and_then(|p| open[p]) {
            Some(s) => s,
            None => {
                out.push(Segment {
                    parent: n.parent.and_then(|p| segment_of[p]),
                    base: n.base.clone(),
                    steps: Vec::new(),
                    images: Vec::new(),
                });
                out.len() - 1
            }
        };
        out[seg].steps.push(n.step);
        segment_of[i] = Some(seg);
        if ends(i) {
            out[seg].images.extend(&n.images);
        } else {
            open[i] = Some(seg);
        }
    }
    out
}

/// The images that need no step: they are their base.
pub fn bare_images(plan: &Plan) -> Vec<usize> {
    (0..plan.orders.len())
        .filter(|&i| plan.orders[i].is_empty())
        .collect()
}
