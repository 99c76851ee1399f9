//! What is wrong with a planning problem; each error names its culprit.

/// A problem the planner refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("image {image:?} needs step {step:?}, which is not defined")]
    UnknownStep { image: String, step: String },
    #[error("step {step:?} must come after {after:?}, which is not defined")]
    UnknownPredecessor { step: String, after: String },
    #[error("step {step:?} has the negative cost {cost}")]
    NegativeCost { step: String, cost: String },
    #[error("image {0:?} needs no steps")]
    EmptyImage(String),
    #[error("{kind} {name:?} is defined twice")]
    Duplicate { kind: &'static str, name: String },
    #[error("the precedence has a cycle: {0}")]
    Cycle(String),
    #[error("image {image:?} lists step {step:?} twice")]
    RepeatedStep { image: String, step: String },
    #[error("{name}: {message}")]
    Dockerfile { name: String, message: String },
    #[error("the spec: {0}")]
    Syntax(String),
}
