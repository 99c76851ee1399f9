//! berth patch: seccomp programs compiled once, not once per container.
//!
//! libseccomp turns a profile the size of Docker's default into BPF in
//! ~25 ms, which was a third of a container's whole create-start-delete.
//! The runtime process now prepares the program before it forks (from a
//! file cache in the state root, or compiled and stored there), and the
//! container's init, a copy of that process, loads the prepared program
//! with `seccomp(2)` when it is for the same profile. Anything unusual
//! (a notify rule, a flag only libseccomp knows how to apply, an unreadable
//! or mismatched cache file) takes the old path: compiled in the init.
//!
//! A cache file holds the whole key it was made for — the profile as JSON,
//! libseccomp's version, the kernel release, the architecture — and is used
//! only when that key matches byte for byte. The state root is root-only.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Mutex;

use libseccomp::ScmpVersion;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};

use super::{SeccompError, is_notify};

/// What a cache file starts with.
const MAGIC: &[u8] = b"berth-seccomp-bpf 1\n";
/// The kernel's limit on a program's length (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
const INSN: usize = std::mem::size_of::<libc::sock_filter>();

/// The program prepared for a profile, inherited by the processes forked
/// after [`prepare`].
struct Prepared {
    profile: Vec<u8>,
    program: Vec<libc::sock_filter>,
}

static PREPARED: Mutex<Option<Prepared>> = Mutex::new(None);

/// Prepares the program for `seccomp` from the cache in `dir` (compiling
/// and storing it on a miss). Best effort: a failure only means the init
/// compiles it itself.
pub fn prepare(seccomp: &LinuxSeccomp, dir: &Path) {
    let Some(profile) = cacheable(seccomp) else {
        return;
    };
    match program_for(seccomp, &profile, dir) {
        Ok(program) => {
            if let Ok(mut slot) = PREPARED.lock() {
                *slot = Some(Prepared { profile, program });
            }
        }
        Err(e) => tracing::debug!(error = %e, dir = %dir.display(), "no cached seccomp program"),
    }
}

/// Loads the prepared program if it is `seccomp`'s; `false` when there is
/// none (the caller compiles).
pub(super) fn load_prepared(seccomp: &LinuxSeccomp) -> Result<bool, SeccompError> {
    let Some(profile) = cacheable(seccomp) else {
        return Ok(false);
    };
    // try_lock: a lock held by another thread at fork time stays held here.
    let Ok(slot) = PREPARED.try_lock() else {
        return Ok(false);
    };
    let Some(prepared) = slot.as_ref().filter(|p| p.profile == profile) else {
        return Ok(false);
    };
    load(&prepared.program, filter_flags(seccomp))?;
    Ok(true)
}

/// The profile as JSON when the cached path can load it exactly as
/// libseccomp would.
fn cacheable(seccomp: &LinuxSeccomp) -> Option<Vec<u8>> {
    let waits = seccomp
        .flags()
        .as_ref()
        .is_some_and(|f| f.contains(&LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv));
    if is_notify(seccomp) || waits {
        return None;
    }
    serde_json::to_vec(seccomp).ok()
}

/// The `seccomp(2)` flags libseccomp would pass for the profile's flags.
fn filter_flags(seccomp: &LinuxSeccomp) -> libc::c_ulong {
    let mut flags = 0;
    for flag in seccomp.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    flags
}

fn load(program: &[libc::sock_filter], flags: libc::c_ulong) -> Result<(), SeccompError> {
    let prog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, alive for the call; the kernel
    // copies and verifies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(SeccompError::LoadProgram {
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Everything the compiled program depends on.
fn cache_key(profile: &[u8]) -> io::Result<Vec<u8>> {
    let v = ScmpVersion::current().map_err(io::Error::other)?;
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let mut key = format!(
        "libseccomp {}.{}.{} kernel {} arch {}\n",
        v.major,
        v.minor,
        v.micro,
        kernel.trim(),
        std::env::consts::ARCH
    )
    .into_bytes();
    key.extend_from_slice(profile);
    Ok(key)
}

fn program_for(
    seccomp: &LinuxSeccomp,
    profile: &[u8],
    dir: &Path,
) -> io::Result<Vec<libc::sock_filter>> {
    let key = cache_key(profile)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let path = dir.join(format!("{:016x}.bpf", h.finish()));
    match read_cached(&path, &key) {
        Ok(Some(program)) => return Ok(program),
        Ok(None) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::debug!(error = %e, path = %path.display(), "unreadable seccomp cache"),
    }
    compile_and_store(seccomp, &key, dir, &path)
}

/// The program of a cache file made for exactly `key`.
fn read_cached(path: &Path, key: &[u8]) -> io::Result<Option<Vec<libc::sock_filter>>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?.read_to_end(&mut bytes)?;
    let Some(rest) = bytes.strip_prefix(MAGIC) else {
        return Ok(None);
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len || &rest[..len] != key {
        return Ok(None);
    }
    Ok(parse_program(&rest[len..]))
}

fn parse_program(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
    if bytes.is_empty() || bytes.len() % INSN != 0 || bytes.len() / INSN > MAX_INSNS {
        return None;
    }
    let program = bytes
        .chunks_exact(INSN)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect();
    Some(program)
}

/// Compiles the profile with libseccomp, stores it under `path` (written
/// aside, then renamed: readers never see half a file) and returns it.
fn compile_and_store(
    seccomp: &LinuxSeccomp,
    key: &[u8],
    dir: &Path,
    path: &Path,
) -> io::Result<Vec<libc::sock_filter>> {
    let ctx = super::build_filter(seccomp).map_err(io::Error::other)?;
    fs::create_dir_all(dir)?;
    // Named per process and thread (one writer each); a file a crashed
    // process left under a reused name is overwritten.
    let tmp = dir.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let len = u32::try_from(key.len()).map_err(io::Error::other)?;
        f.write_all(MAGIC)?;
        f.write_all(&len.to_le_bytes())?;
        f.write_all(key)?;
        f.flush()?;
        ctx.export_bpf(&f).map_err(io::Error::other)?;
        let program = read_cached(&tmp, key)?
            .ok_or_else(|| io::Error::other("libseccomp exported no usable program"))?;
        fs::rename(&tmp, path)?;
        Ok(program)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}
