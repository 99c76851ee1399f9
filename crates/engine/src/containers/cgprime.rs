//! Starting the cgroup core's lock wait before the runtime needs it.
//!
//! Every move of a task into a cgroup (the runtime writing the container's
//! pid to `cgroup.procs`) takes the kernel's `cgroup_threadgroup_rwsem` for
//! writing. That is a per-CPU rwsem: when no writer has used it for a
//! moment, the first writer waits a whole RCU grace period before it gets
//! it (`rcu_sync_enter`), and writers that follow within a grace period
//! do not. Measured here: 6–25 ms for the first move, 0.05 ms after; a
//! `run --rm` spent a third of its time in that wait.
//!
//! So when a container is about to start, a thread of the daemon moves
//! itself into the cgroup it is already in (nothing changes, but the lock
//! is taken for writing): the grace period runs while the shim starts and
//! the runtime forks, and the runtime's own move finds it over. Best
//! effort: where the write is refused the primer stops trying.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

/// Starts the wait early, on its own thread.
#[derive(Debug)]
pub struct Primer {
    wake: SyncSender<()>,
}

impl Primer {
    /// A primer writing to the daemon's own cgroup file; `None` where it
    /// has none it can find.
    pub fn start() -> Option<Self> {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let file = own_cgroup_file(&cgroup, &mountinfo)?;
        let (wake, woken) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("cgroup-primer".to_owned())
            .spawn(move || run(&file, &woken))
            .ok()?;
        Some(Self { wake })
    }

    /// Asks for a write soon; one already asked for covers this one.
    pub fn prime(&self) {
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

fn run(file: &Path, woken: &Receiver<()>) {
    while woken.recv().is_ok() {
        let tid = nix::unistd::gettid();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .and_then(|mut f| f.write_all(tid.to_string().as_bytes()));
        if let Err(e) = written {
            tracing::debug!(file = %file.display(), error = %e, "cgroup primer stops");
            return;
        }
    }
}

/// The file that moves a thread into the cgroup it is in: `tasks` of the
/// first cgroup v1 hierarchy that is mounted, else the unified
/// hierarchy's `cgroup.procs` (which moves the whole daemon, into the
/// cgroup it is in).
fn own_cgroup_file(cgroup: &str, mountinfo: &str) -> Option<PathBuf> {
    let mut unified = None;
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            unified =
                mount_of(mountinfo, "cgroup2", None).map(|m| m.join(rel).join("cgroup.procs"));
            continue;
        }
        let first = controllers.split(',').next()?;
        if let Some(m) = mount_of(mountinfo, "cgroup", Some(first)) {
            return Some(m.join(rel).join("tasks"));
        }
    }
    unified
}

/// The mount point of a cgroup file system (`fstype`), for v1 the one
/// whose options name `controller`. Only mounts of the hierarchy's root.
fn mount_of(mountinfo: &str, fstype: &str, controller: Option<&str>) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let mut rfields = right.split(' ');
        let (fs, _, options) = (rfields.next()?, rfields.next()?, rfields.next()?);
        let root_ok = fields.get(3) == Some(&"/");
        let controller_ok = controller.is_none_or(|c| options.split(',').any(|o| o == c));
        let point = fields.get(4)?;
        (fs == fstype && root_ok && controller_ok).then(|| PathBuf::from(point))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
24 29 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
31 24 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct
36 31 0:31 / /sys/fs/cgroup/pids rw shared:15 - cgroup cgroup rw,pids
";

    #[test]
    fn the_first_mounted_v1_hierarchy_is_chosen_else_the_unified_one() {
        let cgroup = "12:pids:/system.slice/berth.service\n\
                      4:cpu,cpuacct:/system.slice\n\
                      0::/system.slice/berth.service\n";
        assert_eq!(
            own_cgroup_file(cgroup, MOUNTINFO),
            Some(PathBuf::from(
                "/sys/fs/cgroup/pids/system.slice/berth.service/tasks"
            ))
        );
        // A controller whose hierarchy is not mounted is skipped.
        let cgroup = "9:memory:/a\n4:cpu,cpuacct:/b\n";
        assert_eq!(
            own_cgroup_file(cgroup, MOUNTINFO),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/b/tasks"))
        );
        assert_eq!(
            own_cgroup_file("0::/user.slice\n", MOUNTINFO),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/user.slice/cgroup.procs"
            ))
        );
        assert_eq!(
            own_cgroup_file("0::/\n", "24 29 0:22 / /sys rw - sysfs sysfs rw\n"),
            None
        );
    }

    #[test]
    fn priming_leaves_the_daemon_where_it_was() {
        let before = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let Some(primer) = Primer::start() else {
            return; // no cgroup file system here
        };
        for _ in 0..3 {
            primer.prime();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            before
        );
    }
}
