//! A set of step indexes as bits (hashable: the exact search memoizes on
//! it).

/// Steps, as bits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct StepSet(Vec<u64>);

impl StepSet {
    pub fn new(steps: usize) -> Self {
        Self(vec![0; steps.div_ceil(64)])
    }

    pub fn contains(&self, s: usize) -> bool {
        self.0.get(s / 64).is_some_and(|w| w & (1 << (s % 64)) != 0)
    }

    pub fn insert(&mut self, s: usize) {
        if let Some(w) = self.0.get_mut(s / 64) {
            *w |= 1 << (s % 64);
        }
    }

    pub fn with(&self, s: usize) -> Self {
        let mut out = self.clone();
        out.insert(s);
        out
    }

    /// The steps in both.
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.iter().zip(&other.0).map(|(a, b)| a & b).collect())
    }

    /// Whether every step of `self` is in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }
}
