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

/// The segments of `plan`, parents first; an image that needs no step
/// is a segment of its own with no steps (its base, re-tagged).
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
    let mut segment_of: Vec<usize> = Vec::with_capacity(nodes.len());
    let mut out: Vec<Segment> = Vec::new();
    // Nodes come parents first: a node continues its parent's segment
    // unless the parent ended it.
    for n in &nodes {
        let seg = match n.parent.filter(|&p| !ends(p)) {
            Some(p) => segment_of[p],
            None => {
                out.push(Segment {
                    parent: n.parent.map(|p| segment_of[p]),
                    base: n.base.clone(),
                    steps: Vec::new(),
                    images: Vec::new(),
                });
                out.len() - 1
            }
        };
        out[seg].steps.push(n.step);
        out[seg].images.extend(&n.images);
        segment_of.push(seg);
    }
    for (i, order) in plan.orders.iter().enumerate() {
        if order.is_empty() {
            out.push(Segment {
                parent: None,
                base: problem.images[i].base.clone(),
                steps: Vec::new(),
                images: vec![i],
            });
        }
    }
    out
}
