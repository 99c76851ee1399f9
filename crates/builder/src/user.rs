//! `--chown` owners, as Docker resolves them: numbers as they are, names
//! from the destination's `/etc/passwd` and `/etc/group` (read through a
//! handle confined to its root); a lone user name takes its primary group
//! from passwd, a lone number doubles as the group (as Docker does,
//! <https://docs.docker.com/reference/dockerfile/#copy---chown---chmod>).

use berth_store::fsroot::Root;

use crate::error::{BuildError, Result};

/// `user[:group]` → (uid, gid).
pub fn chown(spec: &str, root: &Root) -> Result<(u32, u32)> {
    let (user, group) = spec
        .split_once(':')
        .map_or((spec, None), |(u, g)| (u, Some(g)));
    let uid = id_of(user, root, "etc/passwd", "uid", "user")?;
    let gid = match group {
        Some(g) => id_of(g, root, "etc/group", "gid", "group")?,
        None if user.parse::<u32>().is_ok() => uid,
        None => field_of(user, root, "etc/passwd", 3).unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// Field `index` (a number) of the entry named `name` in `file`.
fn field_of(name: &str, root: &Root, file: &str, index: usize) -> Option<u32> {
    let text = root.read(file).ok()?;
    String::from_utf8_lossy(&text)
        .lines()
        .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
        .find(|f| f.len() > index && f[0] == name)
        .and_then(|f| f[index].parse().ok())
}

fn id_of(name: &str, root: &Root, file: &str, what: &str, kind: &str) -> Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let fail = |why: String| {
        BuildError::Invalid(format!(
            "unable to convert uid/gid chown string to host mapping: can't find {what} for {kind} {name}: {why}"
        ))
    };
    let text = root
        .read(file)
        .map_err(|e| fail(format!("reading /{file}: {e}")))?;
    String::from_utf8_lossy(&text)
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| fail(format!("no such {kind}: {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_a_lone_user() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(chown("app", &root).unwrap(), (1000, 1001), "primary group");
        assert_eq!(chown("app:staff", &root).unwrap(), (1000, 50));
        assert_eq!(chown("7:8", &root).unwrap(), (7, 8));
        assert_eq!(chown("9", &root).unwrap(), (9, 9));
        let err = chown("nobody", &root).unwrap_err();
        assert!(err.to_string().contains("no such user: nobody"), "{err}");
    }
}
