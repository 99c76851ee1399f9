//! Default OCI specs. [`docker_spec`] is what a Docker user expects of
//! `docker run` (the engine starts from it); [`runc_spec`] is what `runc spec`
//! writes, for `berth runtime spec`.
//!
//! Docker's defaults: <https://github.com/moby/moby/blob/master/oci/defaults.go>
//! (capabilities, masked and readonly paths, mounts) and its default seccomp
//! profile, which `seccomp.json` re-states as data.

mod seccomp;

use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

pub use seccomp::default_seccomp;

/// Docker's default capability set (bounding = effective = permitted).
pub const DOCKER_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from the container: kernel memory, keys, timers, firmware.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but never write.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The PATH a container gets when its image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A spec equivalent to what `docker run` gives a container: Docker's
/// capabilities, seccomp profile, masked and readonly paths, mounts and
/// device rules; new pid, ipc, uts, mount, network and cgroup namespaces;
/// no_new_privileges off. The caller sets args, env, rootfs and limits.
pub fn docker_spec(args: Vec<String>) -> Spec {
    let caps: Vec<String> = DOCKER_CAPS.iter().map(cap_name).collect();
    let cap_set: std::collections::HashSet<Capability> = DOCKER_CAPS.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(cap_set.clone())
        .effective(cap_set.clone())
        .permitted(cap_set)
        .inheritable(std::collections::HashSet::new())
        .ambient(std::collections::HashSet::new())
        .build()
        .expect("all capability sets are given");
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .expect("uid and gid set"),
        )
        .args(args)
        .env(vec![DEFAULT_PATH.to_owned()])
        .cwd("/")
        .no_new_privileges(false)
        .capabilities(capabilities)
        .build()
        .expect("every process field is given");
    let linux = LinuxBuilder::default()
        .namespaces(namespaces(&[
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup,
        ]))
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .resources(
            LinuxResourcesBuilder::default()
                .devices(default_device_rules())
                .build()
                .expect("device rules set"),
        )
        .seccomp(default_seccomp(&caps))
        .build()
        .expect("every linux field is given");
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()
                .expect("root path set"),
        )
        .process(process)
        .hostname("berth")
        .mounts(docker_mounts())
        .linux(linux)
        .build()
        .expect("every spec field is given")
}

/// What `runc spec` writes: a shell on a terminal with runc's small
/// capability set, as a starting point to edit.
pub fn runc_spec() -> Spec {
    let mut spec = Spec::default();
    spec.set_version("1.0.2".into());
    spec.set_hostname(Some("berth".into()));
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
        process.set_no_new_privileges(Some(true));
    }
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(true));
    }
    spec
}

/// Every capability the kernel defines (capabilities(7)), for `--privileged`
/// and `--cap-add ALL`.
pub fn all_capabilities() -> Vec<String> {
    const ALL: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    ALL.iter().map(|c| format!("CAP_{c}")).collect()
}

/// The capabilities of [`all_capabilities`] this process may grant: those
/// in its permitted set (`CapPrm` in `status`, a mask in kernel bit order,
/// the order of that list). A capability the host withholds (these VMs
/// lack CAP_SYS_RESOURCE) cannot be given to a container: asking for it
/// fails the container's capset with EPERM, so `--privileged` means every
/// capability the host allows.
pub fn grantable_capabilities(proc_status: &str) -> Vec<String> {
    let mask = proc_status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    all_capabilities()
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, c)| c)
        .collect()
}

/// [`grantable_capabilities`] of this process.
pub fn own_grantable_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    grantable_capabilities(&status)
}

/// `CAP_` name of a capability, as specs and Docker spell it.
pub fn cap_name(cap: &Capability) -> String {
    format!("CAP_{cap}")
}

fn namespaces(types: &[LinuxNamespaceType]) -> Vec<oci_spec::runtime::LinuxNamespace> {
    types
        .iter()
        .map(|t| {
            LinuxNamespaceBuilder::default()
                .typ(*t)
                .build()
                .expect("type set")
        })
        .collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ)
        .source(PathBuf::from(source))
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .expect("every mount field is given")
}

/// Docker's default mounts (moby `oci/defaults.go`).
fn docker_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    ]
}

fn device_rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .access(access);
    if let Some(major) = major {
        b = b.major(major);
    }
    if let Some(minor) = minor {
        b = b.minor(minor);
    }
    b.build().expect("device rule fields set")
}

/// Deny every device, then allow mknod of any and the standard character
/// devices (null, zero, full, random, urandom, tty, ptmx, pts, tun).
fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .expect("deny rule fields set");
    let mut rules = vec![
        deny_all,
        device_rule(C, None, None, "m"),
        device_rule(B, None, None, "m"),
    ];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (10, 200),
    ] {
        rules.push(device_rule(C, Some(major), Some(minor), "rwm"));
    }
    rules.push(device_rule(C, Some(136), None, "rwm"));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Docker's documented default effective set: `CapEff: 00000000a80425fb`.
    #[test]
    fn docker_caps_match_dockers_mask() {
        let mask: u64 = DOCKER_CAPS.iter().map(|c| 1u64 << cap_number(c)).sum();
        assert_eq!(mask, 0xa804_25fb);
    }

    #[test]
    fn grantable_capabilities_follow_the_permitted_mask() {
        // This VM's mask: every capability but CAP_SYS_RESOURCE (bit 24).
        let caps = grantable_capabilities("Name:\tx\nCapPrm:\t000001fffeffffff\n");
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_owned()));
        assert!(caps.contains(&"CAP_SYS_TIME".to_owned()));
        assert!(caps.contains(&"CAP_CHECKPOINT_RESTORE".to_owned()));
        let few = grantable_capabilities("CapPrm:\t0000000000000003\n");
        assert_eq!(few, ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
        // Unreadable: every capability, and the kernel decides.
        assert_eq!(grantable_capabilities("").len(), 41);
    }

    fn cap_number(cap: &Capability) -> u32 {
        match cap {
            Capability::Chown => 0,
            Capability::DacOverride => 1,
            Capability::Fowner => 3,
            Capability::Fsetid => 4,
            Capability::Kill => 5,
            Capability::Setgid => 6,
            Capability::Setuid => 7,
            Capability::Setpcap => 8,
            Capability::NetBindService => 10,
            Capability::NetRaw => 13,
            Capability::SysChroot => 18,
            Capability::Mknod => 27,
            Capability::AuditWrite => 29,
            Capability::Setfcap => 31,
            other => panic!("not a docker default: {other:?}"),
        }
    }

    #[test]
    fn docker_spec_has_dockers_defaults() {
        let spec = docker_spec(vec!["/bin/true".into()]);
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        assert!(linux
            .readonly_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/sys".to_string()));
        assert!(linux.seccomp().is_some());
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.no_new_privileges(), Some(false));
        let caps = process.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["linux"]["resources"]["devices"][0]["allow"], false);
        assert_eq!(json["mounts"][0]["destination"], "/proc");
    }

    #[test]
    fn runc_spec_is_a_terminal_shell() {
        let spec = runc_spec();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(process.args().as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(
            spec.root().as_ref().unwrap().path(),
            &PathBuf::from("rootfs")
        );
    }
}
