//! Renders berth's default seccomp profile (`seccomp.json`, data compiled
//! into the binary) into an OCI `linux.seccomp` section for one capability
//! set and architecture, as Docker renders its own default profile
//! (<https://docs.docker.com/engine/security/seccomp/>).

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder, LinuxSyscall,
    LinuxSyscallBuilder,
};
use serde::Deserialize;

const PROFILE: &str = include_str!("seccomp.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    default_errno_ret: u32,
    arch_map: std::collections::HashMap<String, Vec<Arch>>,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<LinuxSeccompArg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

impl Rule {
    /// Docker's semantics: every included capability present, no excluded
    /// one, and the architecture listed when a list is given.
    fn applies(&self, caps: &HashSet<&str>, arch: &str) -> bool {
        self.includes.caps.iter().all(|c| caps.contains(c.as_str()))
            && !self.excludes.caps.iter().any(|c| caps.contains(c.as_str()))
            && (self.includes.arches.is_empty() || self.includes.arches.iter().any(|a| a == arch))
    }
}

/// The default profile for a process whose bounding set is `caps`, on the
/// host's architecture. Names this host's libseccomp does not know are left
/// out, as Docker does: they are newer than the kernel headers it knows.
pub fn default_seccomp(caps: &[String]) -> LinuxSeccomp {
    render(caps, std::env::consts::ARCH, &|name| {
        libseccomp::ScmpSyscall::from_name(name).is_ok()
    })
}

fn profile() -> Profile {
    serde_json::from_str(PROFILE).expect("seccomp.json is checked by the unit tests")
}

fn render(caps: &[String], arch: &str, known: &dyn Fn(&str) -> bool) -> LinuxSeccomp {
    let profile = profile();
    let caps: HashSet<&str> = caps.iter().map(String::as_str).collect();
    let syscalls: Vec<LinuxSyscall> = profile
        .rules
        .iter()
        .filter(|rule| rule.applies(&caps, arch))
        .filter_map(|rule| to_oci(rule, known))
        .collect();
    let mut builder = LinuxSeccompBuilder::default()
        .default_action(profile.default_action)
        .default_errno_ret(profile.default_errno_ret)
        .syscalls(syscalls);
    if let Some(arches) = profile.arch_map.get(arch) {
        builder = builder.architectures(arches.clone());
    }
    builder
        .build()
        .expect("every field of the seccomp builder is set")
}

fn to_oci(rule: &Rule, known: &dyn Fn(&str) -> bool) -> Option<LinuxSyscall> {
    let names: Vec<String> = rule.names.iter().filter(|n| known(n)).cloned().collect();
    if names.is_empty() {
        return None;
    }
    let mut builder = LinuxSyscallBuilder::default()
        .names(names)
        .action(rule.action);
    if let Some(errno) = rule.errno_ret {
        builder = builder.errno_ret(errno);
    }
    if !rule.args.is_empty() {
        builder = builder.args(rule.args.clone());
    }
    Some(builder.build().expect("names and action are set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_known(_: &str) -> bool {
        true
    }

    fn rules_for<'a>(s: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        s.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    fn docker_caps() -> Vec<String> {
        super::super::DOCKER_CAPS
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    #[test]
    fn default_action_is_eperm() {
        let s = render(&docker_caps(), "x86_64", &all_known);
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(s.architectures().as_ref().map(Vec::len), Some(3));
    }

    #[test]
    fn mount_needs_sys_admin() {
        let plain = render(&docker_caps(), "x86_64", &all_known);
        assert!(rules_for(&plain, "mount").is_empty());
        assert!(rules_for(&plain, "unshare").is_empty());
        let mut caps = docker_caps();
        caps.push("CAP_SYS_ADMIN".into());
        let admin = render(&caps, "x86_64", &all_known);
        assert_eq!(rules_for(&admin, "mount").len(), 1);
    }

    #[test]
    fn clone_without_sys_admin_is_masked() {
        let s = render(&docker_caps(), "x86_64", &all_known);
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(arg.value(), 0x7E02_0000);
        let clone3 = rules_for(&s, "clone3");
        assert_eq!(clone3[0].errno_ret(), Some(38));
    }

    #[test]
    fn arch_specific_rules_follow_the_arch() {
        let x86 = render(&docker_caps(), "x86_64", &all_known);
        let arm = render(&docker_caps(), "aarch64", &all_known);
        assert_eq!(rules_for(&x86, "arch_prctl").len(), 1);
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        assert_eq!(rules_for(&arm, "set_tls").len(), 1);
    }

    #[test]
    fn dangerous_syscalls_stay_denied() {
        let s = render(&docker_caps(), "x86_64", &all_known);
        for name in [
            "keyctl",
            "add_key",
            "kexec_load",
            "open_by_handle_at",
            "init_module",
            "io_uring_setup",
            "userfaultfd",
        ] {
            assert!(rules_for(&s, name).is_empty(), "{name} is allowed");
        }
    }

    #[test]
    fn unknown_names_are_dropped() {
        let s = render(&docker_caps(), "x86_64", &|n| n != "cachestat");
        assert!(rules_for(&s, "cachestat").is_empty());
        assert!(!rules_for(&s, "read").is_empty());
    }

    #[test]
    fn this_hosts_libseccomp_knows_the_core_names() {
        let s = default_seccomp(&docker_caps());
        for name in ["read", "write", "execve", "clone", "socket", "personality"] {
            assert!(!rules_for(&s, name).is_empty(), "{name} missing");
        }
    }
}
