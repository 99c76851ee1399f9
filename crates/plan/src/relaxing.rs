//! The relaxation (see [`crate::bound`]) solved on a thread of its own
//! while the planner searches: its answers (the ascent's bound, then the
//! LP's with its plans) come by channel, and the search asks now and then
//! whether they prove its best plan optimal.

use crate::plan::Plan;
use crate::problem::Problem;
use crate::{bound, meets};

/// The relaxation, solved on its own thread; its answer once it came
/// (with its plan checked against the precedence, which it ignores).
pub(crate) struct Relaxing<'a> {
    problem: &'a Problem,
    answer: std::sync::mpsc::Receiver<bound::Relaxation>,
    came: std::cell::RefCell<Option<bound::Relaxation>>,
}

impl<'a> Relaxing<'a> {
    pub(crate) fn start(problem: &'a Problem, deadline: std::time::Instant) -> Self {
        let (tx, answer) = std::sync::mpsc::channel();
        let owned = problem.clone();
        // Not joined: past the deadline its answer is no longer awaited.
        std::thread::spawn(move || {
            bound::relax(&owned, deadline, &mut |mut r| {
                r.plan = r.plan.filter(|p| p.check(&owned).is_ok());
                let _ = tx.send(r);
            });
        });
        Self {
            problem,
            answer,
            came: std::cell::RefCell::new(None),
        }
    }

    /// Takes the latest answer that came (the ascent's bound, then the
    /// relaxation's).
    pub(crate) fn poll(&self) {
        while let Ok(r) = self.answer.try_recv() {
            *self.came.borrow_mut() = Some(r);
        }
    }

    pub(crate) fn whole(&self) -> Option<Plan> {
        self.came.borrow().as_ref().and_then(|r| r.plan.clone())
    }

    /// Whether the answer proves a plan of `cost` (or its own) optimal.
    pub(crate) fn proves(&self, cost: f64) -> bool {
        self.came.borrow().as_ref().is_some_and(|r| {
            meets(cost, r.bound)
                || r.plan
                    .as_ref()
                    .is_some_and(|p| meets(p.cost(self.problem), r.bound))
        })
    }

    /// The last answer that came, not waiting for more.
    pub(crate) fn latest(self) -> bound::Relaxation {
        self.poll();
        self.came.into_inner().unwrap_or_default()
    }

    /// The last answer, waiting for the rest until `deadline`.
    pub(crate) fn wait(self, deadline: std::time::Instant) -> bound::Relaxation {
        let mut last = self.came.into_inner();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.answer.recv_timeout(left) {
                Ok(r) => last = Some(r),
                Err(_) => return last.unwrap_or_default(),
            }
        }
    }
}
