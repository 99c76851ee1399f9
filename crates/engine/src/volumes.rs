//! Named volumes with the `local` driver (`docker volume`, `-v name:/path`,
//! the image's `VOLUME`s): a directory `<data-root>/volumes/<name>/_data`
//! that containers mount, outliving them and the daemon.
//!
//! The directories are the truth of which volumes exist (dockerd's local
//! driver reads them at start-up too); the database (`volumes`, and
//! `volume_refs` for which containers use which) adds labels, options and
//! use. A volume appears by renaming a finished directory into place and
//! disappears by renaming it away before deleting: a crash leaves the old
//! state or the new one, and start-up sweeps what a crash left half done.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_api_types::Filters;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::error::{EngineError, ErrorKind, Result};
use crate::events::Events;

const COMPONENT: &str = "volumes";
const MIGRATIONS: &[&str] = &["CREATE TABLE volumes (
    name       TEXT PRIMARY KEY,
    labels     TEXT NOT NULL,
    options    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    anonymous  INTEGER NOT NULL
);
CREATE TABLE volume_refs (
    volume    TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
    container TEXT NOT NULL,
    PRIMARY KEY (volume, container)
);"];

/// The label Docker (23+) puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// `POST /volumes/create` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateVolume {
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// What berth knows of one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub created_at: String,
    pub anonymous: bool,
    pub mountpoint: PathBuf,
    /// Containers that use it.
    pub users: Vec<String>,
}

impl Volume {
    /// Docker's JSON for a volume.
    pub fn to_json(&self) -> Value {
        json!({
            "Name": self.name,
            "Driver": "local",
            "Mountpoint": self.mountpoint,
            "CreatedAt": self.created_at,
            "Labels": self.labels,
            "Scope": "local",
            "Options": if self.options.is_empty() { Value::Null } else { json!(self.options) },
        })
    }
}

/// The volume service.
#[derive(Debug)]
pub struct VolumeService {
    root: PathBuf,
    db: Mutex<Connection>,
    events: Arc<Events>,
    /// Held by every change of the set of volumes and their uses: a
    /// volume is never removed between a container's finding it and its
    /// claim, and two creates of one name never race.
    ops: Mutex<()>,
}

fn io_err(context: &str, path: &Path, e: std::io::Error) -> EngineError {
    EngineError::new(
        ErrorKind::Internal,
        format!("{context} {}: {e}", path.display()),
    )
}

fn no_such_volume(name: &str) -> EngineError {
    EngineError::new(ErrorKind::NotFound, format!("get {name}: no such volume"))
}

/// Docker's rule for volume names.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first && rest && name.len() >= 2 {
        return Ok(());
    }
    Err(EngineError::invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl VolumeService {
    /// Opens the volumes under `data_root/volumes` and their records;
    /// repairs what a crash left.
    pub fn new(data_root: &Path, events: Arc<Events>) -> Result<Self> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root).map_err(|e| io_err("creating", &root, e))?;
        let db =
            berth_store::db::open_component(&data_root.join("berth.db"), COMPONENT, MIGRATIONS)
                .map_err(|(context, e)| EngineError::db(context)(e))?;
        let svc = Self {
            root,
            db: Mutex::new(db),
            events,
            ops: Mutex::new(()),
        };
        svc.reconcile()?;
        Ok(svc)
    }

    fn ops(&self) -> MutexGuard<'_, ()> {
        self.ops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where a volume's data is.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Half-made and half-removed volumes go; a volume directory with no
    /// record (the record was lost) is recorded; a record with no
    /// directory is dropped.
    fn reconcile(&self) -> Result<()> {
        let entries =
            std::fs::read_dir(&self.root).map_err(|e| io_err("reading", &self.root, e))?;
        let mut on_disk = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                let _ = std::fs::remove_dir_all(entry.path());
            } else if entry.path().join("_data").is_dir() {
                on_disk.push(name);
            }
        }
        let conn = self.conn();
        for name in &on_disk {
            conn.execute(
                "INSERT OR IGNORE INTO volumes (name, labels, options, created_at, anonymous)
                 VALUES (?1, '{}', '{}', ?2, 0)",
                rusqlite::params![name, now()],
            )
            .map_err(EngineError::db("recording a volume found on disk"))?;
        }
        let recorded: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM volumes")
                .map_err(EngineError::db("listing volumes"))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(EngineError::db("listing volumes"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(EngineError::db("listing volumes"))?
        };
        for name in recorded.iter().filter(|n| !on_disk.contains(n)) {
            conn.execute("DELETE FROM volumes WHERE name = ?1", [name])
                .map_err(EngineError::db("dropping the record of a missing volume"))?;
        }
        Ok(())
    }

    /// Creates a volume (`POST /volumes/create`); creating one that exists
    /// returns it, as Docker does.
    pub fn create(&self, req: CreateVolume) -> Result<Volume> {
        let _ops = self.ops();
        self.create_locked(req)
    }

    /// Creates or finds a volume and records that `container` uses it, in
    /// one step no removal can come between.
    pub fn claim(&self, req: CreateVolume, container: &str) -> Result<Volume> {
        let _ops = self.ops();
        let v = self.create_locked(req)?;
        self.attach(&v.name, container)?;
        self.get(&v.name)
    }

    fn create_locked(&self, req: CreateVolume) -> Result<Volume> {
        if !matches!(req.driver.as_str(), "" | "local") {
            return Err(EngineError::new(
                ErrorKind::NotFound,
                format!(
                    "error looking up volume plugin {}: plugin \"{}\" not found",
                    req.driver, req.driver
                ),
            ));
        }
        let options = req.driver_opts.unwrap_or_default();
        if let Some(key) = options.keys().next() {
            return Err(EngineError::new(
                ErrorKind::NotImplemented,
                format!("the local driver's options (such as {key:?}: a device or tmpfs to mount) are not supported by berth yet"),
            ));
        }
        let anonymous = req.name.is_empty();
        let name = if anonymous {
            crate::containers::new_id()
        } else {
            check_name(&req.name)?;
            req.name
        };
        let mut labels = req.labels.unwrap_or_default();
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
        }
        if let Ok(v) = self.get(&name) {
            return Ok(v);
        }
        self.make(&name, &labels, &options, anonymous)?;
        self.events.publish(
            "volume",
            "create",
            &name,
            [("driver".to_owned(), "local".to_owned())].into(),
        );
        self.get(&name)
    }

    /// The directory, made aside and renamed into place, then the record.
    fn make(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        options: &BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<()> {
        let tmp = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(&self.root)
            .map_err(|e| io_err("creating a volume in", &self.root, e))?;
        let data = tmp.path().join("_data");
        std::fs::create_dir(&data).map_err(|e| io_err("creating", &data, e))?;
        let encode = |m: &BTreeMap<String, String>| serde_json::to_string(m).unwrap_or_default();
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO volumes (name, labels, options, created_at, anonymous)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![name, encode(labels), encode(options), now(), anonymous],
        )
        .map_err(EngineError::db("recording a volume"))?;
        let dest = self.root.join(name);
        std::fs::rename(tmp.keep(), &dest).map_err(|e| {
            let _ = conn.execute("DELETE FROM volumes WHERE name = ?1", [name]);
            io_err("creating", &dest, e)
        })
    }

    /// One volume (`GET /volumes/{name}`).
    pub fn get(&self, name: &str) -> Result<Volume> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT labels, options, created_at, anonymous FROM volumes WHERE name = ?1",
                [name],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(EngineError::db("reading a volume"))?;
        let Some((labels, options, created_at, anonymous)) = row else {
            return Err(no_such_volume(name));
        };
        if !self.root.join(name).join("_data").is_dir() {
            return Err(no_such_volume(name));
        }
        let users = users_of(&conn, name)?;
        Ok(Volume {
            name: name.to_owned(),
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            options: serde_json::from_str(&options).unwrap_or_default(),
            created_at,
            anonymous,
            mountpoint: self.data_path(name),
            users,
        })
    }

    /// Every volume matching Docker's filters (`dangling`, `driver`,
    /// `label`, `name`).
    pub fn list(&self, filters: &Filters) -> Result<Vec<Volume>> {
        filters
            .only(&["dangling", "driver", "label", "name"])
            .map_err(EngineError::invalid)?;
        let dangling = filters.bool("dangling").map_err(EngineError::invalid)?;
        let names: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT name FROM volumes ORDER BY name")
                .map_err(EngineError::db("listing volumes"))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(EngineError::db("listing volumes"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(EngineError::db("listing volumes"))?
        };
        let mut out = Vec::new();
        for name in names {
            let Ok(v) = self.get(&name) else { continue };
            let keep = dangling.is_none_or(|d| d == v.users.is_empty())
                && filters.get("driver").iter().all(|d| d == "local")
                && filters
                    .get("name")
                    .iter()
                    .all(|n| v.name.contains(n.as_str()))
                && filters
                    .get("label")
                    .iter()
                    .all(|l| label_matches(&v.labels, l));
            if keep {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Removes a volume (`DELETE /volumes/{name}`); one in use is a
    /// conflict, `force` or not (as under Docker); with `force` a missing
    /// one is fine.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let _ops = self.ops();
        let v = match self.get(name) {
            Ok(v) => v,
            Err(_) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        if !v.users.is_empty() {
            return Err(EngineError::new(
                ErrorKind::Conflict,
                format!("remove {name}: volume is in use - [{}]", v.users.join(", ")),
            ));
        }
        let dir = self.root.join(name);
        let trash = self
            .root
            .join(format!(".trash-{name}-{}", crate::containers::new_id()));
        std::fs::rename(&dir, &trash).map_err(|e| io_err("removing", &dir, e))?;
        self.conn()
            .execute("DELETE FROM volumes WHERE name = ?1", [name])
            .map_err(EngineError::db("removing a volume"))?;
        std::fs::remove_dir_all(&trash).map_err(|e| io_err("removing", &trash, e))?;
        self.events
            .publish("volume", "destroy", name, BTreeMap::new());
        Ok(())
    }

    /// Removes the unused volumes matching `filters` (`label`, `label!`,
    /// `all`); returns their names and the bytes freed.
    pub fn prune(&self, filters: &Filters) -> Result<(Vec<String>, u64)> {
        filters
            .only(&["label", "label!", "all"])
            .map_err(EngineError::invalid)?;
        let mut deleted = Vec::new();
        let mut freed = 0;
        for v in self.list(&Filters::default())? {
            let keep = !v.users.is_empty()
                || !filters
                    .get("label")
                    .iter()
                    .all(|l| label_matches(&v.labels, l))
                || filters
                    .get("label!")
                    .iter()
                    .any(|l| label_matches(&v.labels, l));
            if keep {
                continue;
            }
            let size = dir_size(&v.mountpoint);
            if self.remove(&v.name, false).is_ok() {
                freed += size;
                deleted.push(v.name);
            }
        }
        self.events.publish("volume", "prune", "", BTreeMap::new());
        Ok((deleted, freed))
    }

    /// Records that `container` uses `volume`.
    pub fn attach(&self, volume: &str, container: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO volume_refs (volume, container) VALUES (?1, ?2)",
                [volume, container],
            )
            .map_err(EngineError::db("recording a volume's use"))?;
        Ok(())
    }

    /// Forgets every use `container` made of volumes.
    pub fn detach(&self, container: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM volume_refs WHERE container = ?1", [container])
            .map_err(EngineError::db("forgetting a container's volumes"))?;
        Ok(())
    }

    /// Forgets the uses by containers not in `known` (removed while a
    /// crash left their references).
    pub fn forget_others(&self, known: &std::collections::HashSet<String>) -> Result<()> {
        let conn = self.conn();
        let users: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT DISTINCT container FROM volume_refs")
                .map_err(EngineError::db("listing volume uses"))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(EngineError::db("listing volume uses"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(EngineError::db("listing volume uses"))?
        };
        for c in users.iter().filter(|c| !known.contains(*c)) {
            conn.execute("DELETE FROM volume_refs WHERE container = ?1", [c])
                .map_err(EngineError::db("forgetting a removed container's volumes"))?;
        }
        Ok(())
    }
}

fn users_of(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT container FROM volume_refs WHERE volume = ?1 ORDER BY container")
        .map_err(EngineError::db("listing a volume's users"))?;
    let rows = stmt
        .query_map([name], |r| r.get(0))
        .map_err(EngineError::db("listing a volume's users"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(EngineError::db("listing a volume's users"))
}

/// `key` or `key=value` against a volume's labels.
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// Bytes of file content under `p` (never following symlinks).
pub fn dir_size(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return if m.is_file() { m.len() } else { 0 };
    }
    std::fs::read_dir(p)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// The volume operations the API serves.
pub trait VolumeBackend: Send + Sync {
    fn create(&self, req: CreateVolume) -> Result<Value>;
    fn inspect(&self, name: &str) -> Result<Value>;
    fn list(&self, filters: &Filters) -> Result<Vec<Value>>;
    fn remove(&self, name: &str, force: bool) -> Result<()>;
    fn prune(&self, filters: &Filters) -> Result<(Vec<String>, u64)>;
    /// Every volume with its `UsageData` (size, users), for `system df`.
    fn usage(&self) -> Result<Vec<Value>>;
}

impl VolumeBackend for Arc<VolumeService> {
    fn create(&self, req: CreateVolume) -> Result<Value> {
        VolumeService::create(self, req).map(|v| v.to_json())
    }
    fn inspect(&self, name: &str) -> Result<Value> {
        self.get(name).map(|v| v.to_json())
    }
    fn list(&self, filters: &Filters) -> Result<Vec<Value>> {
        Ok(VolumeService::list(self, filters)?
            .iter()
            .map(Volume::to_json)
            .collect())
    }
    fn remove(&self, name: &str, force: bool) -> Result<()> {
        VolumeService::remove(self, name, force)
    }
    fn prune(&self, filters: &Filters) -> Result<(Vec<String>, u64)> {
        VolumeService::prune(self, filters)
    }
    fn usage(&self) -> Result<Vec<Value>> {
        Ok(VolumeService::list(self, &Filters::default())?
            .iter()
            .map(|v| {
                let mut j = v.to_json();
                j["UsageData"] = json!({
                    "Size": dir_size(&v.mountpoint),
                    "RefCount": v.users.len(),
                });
                j
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &Path) -> VolumeService {
        VolumeService::new(dir, Arc::new(Events::default())).unwrap()
    }

    fn named(name: &str) -> CreateVolume {
        CreateVolume {
            name: name.into(),
            ..CreateVolume::default()
        }
    }

    #[test]
    fn volumes_are_created_listed_used_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let s = service(t.path());
        let v = s
            .create(CreateVolume {
                name: "data".into(),
                labels: Some([("tier".to_owned(), "db".to_owned())].into()),
                ..CreateVolume::default()
            })
            .unwrap();
        assert!(v.mountpoint.is_dir());
        assert_eq!(
            s.create(named("data")).unwrap().created_at,
            v.created_at,
            "idempotent"
        );
        let anon = s.create(CreateVolume::default()).unwrap();
        assert!(anon.anonymous && anon.labels.contains_key(ANONYMOUS_LABEL));
        assert_eq!(anon.name.len(), 64);
        s.attach("data", "c1").unwrap();
        let f = |raw: &str| Filters::parse(raw).unwrap();
        let names = |v: Vec<Volume>| v.into_iter().map(|v| v.name).collect::<Vec<_>>();
        assert_eq!(
            names(s.list(&f(r#"{"dangling":["false"]}"#)).unwrap()),
            ["data"]
        );
        assert_eq!(
            names(s.list(&f(r#"{"label":["tier=db"]}"#)).unwrap()),
            ["data"]
        );
        assert_eq!(names(s.list(&f(r#"{"name":["at"]}"#)).unwrap()), ["data"]);
        let err = s.remove("data", true).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        assert!(
            err.message.contains("volume is in use - [c1]"),
            "{}",
            err.message
        );
        s.detach("c1").unwrap();
        s.remove("data", false).unwrap();
        assert_eq!(s.get("data").unwrap_err().kind, ErrorKind::NotFound);
        assert!(!t.path().join("volumes/data").exists());
        s.remove("data", true).unwrap();
        let (pruned, _) = s.prune(&Filters::default()).unwrap();
        assert_eq!(pruned, [anon.name]);
    }

    #[test]
    fn bad_names_and_drivers_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let s = service(t.path());
        for bad in ["-x", "a/b", "x", "../up"] {
            assert_eq!(
                s.create(named(bad)).unwrap_err().kind,
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
        let nfs = CreateVolume {
            name: "n".repeat(3),
            driver: "nfs".into(),
            ..CreateVolume::default()
        };
        assert_eq!(s.create(nfs).unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn start_up_repairs_what_a_crash_left() {
        let t = tempfile::tempdir().unwrap();
        {
            let s = service(t.path());
            s.create(named("kept")).unwrap();
            s.create(named("lost")).unwrap();
        }
        // A half-made volume, a half-removed one, a directory whose record
        // was lost, a record whose directory went.
        let root = t.path().join("volumes");
        std::fs::create_dir_all(root.join(".new-x/_data")).unwrap();
        std::fs::create_dir_all(root.join(".trash-y/_data")).unwrap();
        std::fs::create_dir_all(root.join("found/_data")).unwrap();
        std::fs::remove_dir_all(root.join("lost")).unwrap();
        let s = service(t.path());
        let names: Vec<String> = s
            .list(&Filters::default())
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["found", "kept"]);
        assert!(!root.join(".new-x").exists() && !root.join(".trash-y").exists());
    }
}
