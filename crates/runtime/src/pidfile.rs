//! Pid files for supervisors (containerd reads them): written to a temp file
//! beside the target and renamed, so a reader never sees a partial pid.

use std::io::Write;
use std::path::Path;

use crate::error::{Result, RuntimeError};

/// Atomically writes `pid` to `path`.
pub fn write(path: &Path, pid: i32) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(pid.to_string().as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        RuntimeError::io("write pid file", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_pid_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.pid");
        write(&path, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_file() {
        let err = write(Path::new("/nonexistent/dir/x.pid"), 1).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/dir/x.pid"), "{err}");
    }
}
