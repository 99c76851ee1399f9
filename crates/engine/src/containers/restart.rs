//! Restart policies, with Docker's rules: `no`; `on-failure[:N]` (a
//! non-zero exit, at most N restarts); `always` (after any exit; a
//! container the user stopped waits for the next daemon start);
//! `unless-stopped` (like always, but a stopped container stays stopped).
//! Restarts back off: 100 ms, doubling up to a minute, back to 100 ms
//! after a run of 10 s or more.

use std::sync::Arc;
use std::time::Duration;

use super::model::{HostConfig, Record, RestartPolicy, State, Status};
use super::{records, ContainerService};
use crate::error::{EngineError, Result};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the delay.
const STEADY_RUN: Duration = Duration::from_secs(10);

/// Checks a create request's policy.
pub fn check(h: &HostConfig) -> Result<()> {
    let p = &h.restart_policy;
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => {
            return Err(EngineError::invalid(format!(
                "invalid restart policy '{other}'"
            )))
        }
    }
    if p.maximum_retry_count < 0 {
        return Err(EngineError::invalid(
            "invalid restart policy: maximum retry count cannot be negative",
        ));
    }
    if p.maximum_retry_count > 0 && p.name != "on-failure" {
        return Err(EngineError::invalid(format!(
            "invalid restart policy: maximum retry count can only be used with 'on-failure' (not '{}')",
            p.name
        )));
    }
    if h.auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(EngineError::invalid(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    Ok(())
}

/// Whether the policy restarts a container in `state` (its last exit
/// recorded); `boot`: the daemon is starting up.
pub fn should_restart(p: &RestartPolicy, state: &State, boot: bool) -> bool {
    match p.name.as_str() {
        "always" => boot || !state.manually_stopped,
        "unless-stopped" => !state.manually_stopped,
        "on-failure" => {
            let max = u32::try_from(p.maximum_retry_count).unwrap_or(u32::MAX);
            state.exit_code != 0
                && !state.manually_stopped
                && (max == 0 || state.restart_count < max)
        }
        _ => false,
    }
}

/// The delay before the next restart, given the last one and how long the
/// container ran.
fn next_delay(last: Option<Duration>, ran: Duration) -> Duration {
    match last {
        Some(d) if ran < STEADY_RUN => (d * 2).min(MAX_DELAY),
        _ => FIRST_DELAY,
    }
}

fn ran_for(state: &State) -> Duration {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    match (parse(&state.started_at), parse(&state.finished_at)) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

impl ContainerService {
    /// After an exit was recorded in `rec`: marks it restarting and starts
    /// it again after the back-off delay, if its policy says so. Returns
    /// whether it will restart.
    pub(super) fn plan_restart(self: &Arc<Self>, rec: &mut Record) -> bool {
        if !should_restart(&rec.request.host_config.restart_policy, &rec.state, false) {
            return false;
        }
        rec.state.status = Status::Restarting;
        let svc = self.clone();
        let id = rec.id.clone();
        let ran = ran_for(&rec.state);
        // The caller holds the records: the delay is worked out on the thread.
        std::thread::spawn(move || {
            let delay = {
                let mut delays = svc.lock_policy();
                let d = next_delay(delays.get(&id).copied(), ran);
                delays.insert(id.clone(), d);
                d
            };
            std::thread::sleep(delay);
            svc.restart_now(&id);
        });
        true
    }

    /// The policy's lock (with the last delays): a restart in progress and
    /// a user's stop never interleave.
    pub(super) fn lock_policy(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Duration>> {
        self.restart_delays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The delay is over: starts the container unless it was stopped or
    /// removed meanwhile.
    fn restart_now(self: &Arc<Self>, id: &str) {
        // The file lock first, as a removal takes them.
        let files = self.file_locks.lock(id);
        let _policy = self.lock_policy();
        let Ok(rec) = self.find(id) else { return };
        if rec.state.status != Status::Restarting {
            return;
        }
        if let Err(e) = self.start_again(&rec, Some(files)) {
            tracing::error!(id, error = %e.message, "restarting");
            let conn = self.conn();
            if let Ok(mut rec) = records::find(&conn, id) {
                rec.state.status = Status::Exited;
                let _ = records::update(&conn, &rec);
            }
            drop(conn);
            self.notify();
        }
    }

    /// A start by the policy counts as a restart (`files`: the
    /// container's file lock, when the caller holds it).
    fn start_again(
        self: &Arc<Self>,
        rec: &Record,
        files: Option<super::files::FileLock<'_>>,
    ) -> Result<()> {
        {
            let conn = self.conn();
            let mut now = records::find(&conn, &rec.id)?;
            now.state.restart_count += 1;
            records::update(&conn, &now)?;
        }
        match files {
            Some(f) => self.start_locked(&rec.id, false, f),
            None => self.start_as(&rec.id, false),
        }
    }

    /// At daemon start: containers whose policy wants them up (and that
    /// ran before) start again.
    pub(super) fn restart_at_boot(self: &Arc<Self>) -> Result<()> {
        let down: Vec<Record> = records::all(&self.conn())?
            .into_iter()
            .filter(|r| matches!(r.state.status, Status::Exited | Status::Restarting))
            .filter(|r| r.state.started_at != State::default().started_at)
            .filter(|r| should_restart(&r.request.host_config.restart_policy, &r.state, true))
            .collect();
        for rec in down {
            if let Err(e) = self.start_again(&rec, None) {
                tracing::error!(id = rec.id, error = %e.message, "restarting at daemon start");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    fn state(code: i32, count: u32, manual: bool) -> State {
        State {
            exit_code: code,
            restart_count: count,
            manually_stopped: manual,
            ..State::default()
        }
    }

    #[test]
    fn policies_follow_dockers_rules() {
        let failed = state(1, 0, false);
        let ok = state(0, 0, false);
        let stopped = state(137, 0, true);
        assert!(!should_restart(&policy("no", 0), &failed, false));
        assert!(should_restart(&policy("on-failure", 0), &failed, false));
        assert!(!should_restart(&policy("on-failure", 0), &ok, false));
        assert!(!should_restart(
            &policy("on-failure", 2),
            &state(1, 2, false),
            false
        ));
        assert!(should_restart(
            &policy("on-failure", 2),
            &state(1, 1, false),
            false
        ));
        assert!(should_restart(&policy("always", 0), &ok, false));
        assert!(!should_restart(&policy("always", 0), &stopped, false));
        assert!(should_restart(&policy("always", 0), &stopped, true));
        assert!(!should_restart(
            &policy("unless-stopped", 0),
            &stopped,
            true
        ));
        assert!(should_restart(&policy("unless-stopped", 0), &ok, true));
    }

    #[test]
    fn delays_double_up_to_a_minute_and_reset_after_a_steady_run() {
        let quick = Duration::from_millis(50);
        assert_eq!(next_delay(None, quick), FIRST_DELAY);
        assert_eq!(next_delay(Some(FIRST_DELAY), quick), FIRST_DELAY * 2);
        assert_eq!(next_delay(Some(MAX_DELAY), quick), MAX_DELAY);
        assert_eq!(next_delay(Some(MAX_DELAY), STEADY_RUN), FIRST_DELAY);
    }

    #[test]
    fn bad_policies_are_refused() {
        let host = |name: &str, max: i64, rm: bool| HostConfig {
            restart_policy: policy(name, max),
            auto_remove: rm,
            ..HostConfig::default()
        };
        assert!(check(&host("sometimes", 0, false)).is_err());
        assert!(check(&host("always", 3, false)).is_err());
        assert!(check(&host("on-failure", -1, false)).is_err());
        assert!(check(&host("always", 0, true))
            .unwrap_err()
            .message
            .contains("--restart and --rm"));
        assert!(check(&host("on-failure", 3, false)).is_ok());
    }
}
