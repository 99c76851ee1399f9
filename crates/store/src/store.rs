//! The image store: one root directory, owned by one process at a time
//! (an exclusive `flock` on `store.lock`), with its blobs, layers and
//! metadata database. Operations that change it run one at a time under
//! the database lock, which also makes garbage collection safe against a
//! concurrent writer.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_image::{Digest, Reference};
use nix::fcntl::{Flock, FlockArg};
use rusqlite::{Connection, OptionalExtension};

use crate::blobs::BlobStore;
use crate::db;
use crate::error::{Result, StoreError};
use crate::layers::LayerStore;
use crate::unpack::UnpackOptions;

/// Tunables of a store.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Limits applied to every layer unpacked.
    pub unpack: UnpackOptions,
    /// Layers unpacked at once.
    pub parallelism: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            unpack: UnpackOptions::default(),
            parallelism: cores.clamp(2, 8),
        }
    }
}

/// An open image store.
#[derive(Debug)]
pub struct Store {
    pub(crate) root: PathBuf,
    pub(crate) blobs: BlobStore,
    pub(crate) layers: LayerStore,
    pub(crate) opts: StoreOptions,
    db: Mutex<Connection>,
    _lock: Flock<File>,
}

impl Store {
    /// Opens (creating) the store at `root` and repairs work a crash
    /// interrupted: temp blobs and layers, and layers no record names.
    pub fn open(root: &Path, opts: StoreOptions) -> Result<Self> {
        fs::create_dir_all(root).map_err(|e| StoreError::io("creating", root, e))?;
        let lock = lock_root(root)?;
        let conn = db::open(&root.join("berth.db"))?;
        let store = Self {
            root: root.to_owned(),
            blobs: BlobStore::open(root)?,
            layers: LayerStore::open(root, opts.unpack)?,
            opts,
            db: Mutex::new(conn),
            _lock: lock,
        };
        store.remove_unrecorded_layers()?;
        // Holds of operations that died with the last process.
        store
            .conn()
            .execute(
                "DELETE FROM holds WHERE holder LIKE ?1",
                [format!("{TRANSIENT}%")],
            )
            .map_err(StoreError::db("dropping transient holds"))?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The layer directories.
    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// The database, locked for one operation.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-operation rolled its transaction back: the data is fine.
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A layer unpacked before a crash, never recorded, is removed.
    fn remove_unrecorded_layers(&self) -> Result<()> {
        let conn = self.conn();
        for chain in self.layers.list()? {
            if db::layer(&conn, &chain.to_string())?.is_none() {
                tracing::info!(layer = %chain, "removing a layer no image records (interrupted work)");
                self.layers.remove(&chain)?;
            }
        }
        Ok(())
    }

    /// The image ID a name means, as Docker resolves it: a full ID
    /// (`sha256:<hex>` or 64 hex), a reference (`busybox` →
    /// `docker.io/library/busybox:latest`), or an unambiguous ID prefix.
    pub fn resolve(&self, name: &str) -> Result<Digest> {
        resolve(&self.conn(), name)
    }

    /// The layer stack of an image, bottom first, as ChainIDs: what a
    /// container's root is mounted from.
    pub fn chain(&self, image: &Digest) -> Result<Vec<Digest>> {
        let ids = db::image_chain(&self.conn(), &image.to_string())?;
        ids.iter()
            .map(|c| c.parse().map_err(StoreError::from))
            .collect()
    }

    /// Records that `holder` (a container, a build-cache entry) uses an
    /// image: it cannot be removed without force and is never collected.
    pub fn hold(&self, holder: &str, image: &Digest) -> Result<()> {
        unsynced(&self.conn(), |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO holds (holder, kind, target) VALUES (?1, 'image', ?2)",
                [holder, &image.to_string()],
            )
        })
        .map_err(StoreError::db(format!(
            "recording that {holder} uses {image}"
        )))?;
        Ok(())
    }

    /// A holder name for an operation of this process (a save streaming
    /// out): such holds do not outlive the store's next opening.
    pub(crate) fn transient_holder(what: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!("{TRANSIENT}{what}:{}", NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Every holder with a hold (containers, transient operations).
    pub fn holders(&self) -> Result<Vec<String>> {
        crate::db::strings(
            &self.conn(),
            "SELECT DISTINCT holder FROM holds ORDER BY holder",
            [],
            "listing holders",
        )
    }

    /// Drops every hold of `holder`.
    pub fn release(&self, holder: &str) -> Result<()> {
        unsynced(&self.conn(), |conn| {
            conn.execute("DELETE FROM holds WHERE holder = ?1", [holder])
        })
        .map_err(StoreError::db(format!("releasing holds of {holder}")))?;
        Ok(())
    }
}

/// Runs `f` with `synchronous=NORMAL` (no fsync at commit; the store's
/// own writes are FULL). For holds, on the path of every `run` (an fsync
/// of the WAL each, on create and on remove): their holders re-derive
/// them at start-up (the engine drops holds no container names), and a
/// power loss takes only a suffix of the WAL, so a hold written before
/// its container's record is never lost while the record stays.
fn unsynced<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let out = f(conn);
    let restored = conn.pragma_update(None, "synchronous", "FULL");
    let out = out?;
    restored?;
    Ok(out)
}

/// The prefix of holders that live only as long as the process.
const TRANSIENT: &str = "transient:";

fn lock_root(root: &Path) -> Result<Flock<File>> {
    let path = root.join("store.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io("opening", &path, e))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        StoreError::Conflict(format!(
            "the store at {} is in use by another berth process ({errno}); stop it or use another root",
            root.display()
        ))
    })
}

pub(crate) fn resolve(conn: &Connection, name: &str) -> Result<Digest> {
    let not_found = || StoreError::ImageNotFound(name.to_owned());
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    let is_hex = !hex.is_empty()
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if is_hex && hex.len() == 64 {
        return image_exists(conn, &format!("sha256:{hex}"))?.ok_or_else(not_found);
    }
    if let Ok(r) = name.parse::<Reference>() {
        if r.digest().is_some() {
            let id: Option<String> = conn
                .query_row(
                    "SELECT image_id FROM repo_digests WHERE name = ?1",
                    [&r.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::db(format!("looking up {r}")))?;
            return id.ok_or_else(not_found)?.parse().map_err(StoreError::from);
        }
        let full = r.with_default_tag().to_string();
        let id: Option<String> = conn
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [&full], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::db(format!("looking up {full}")))?;
        if let Some(id) = id {
            return id.parse().map_err(StoreError::from);
        }
    }
    if !is_hex {
        return Err(not_found());
    }
    let lo = format!("sha256:{hex}");
    let hi = format!("sha256:{hex}g"); // 'g' sorts after every hex digit
    let sql = "SELECT id FROM images WHERE id >= ?1 AND id < ?2 LIMIT 2";
    let ids = db::strings(
        conn,
        sql,
        [&lo, &hi],
        &format!("looking up ID prefix {hex}"),
    )?;
    match ids.as_slice() {
        [one] => one.parse().map_err(StoreError::from),
        [] => Err(not_found()),
        _ => Err(StoreError::Conflict(format!(
            "image ID prefix {name} is ambiguous: give more characters"
        ))),
    }
}

fn image_exists(conn: &Connection, id: &str) -> Result<Option<Digest>> {
    let found: Option<String> = conn
        .query_row("SELECT id FROM images WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(StoreError::db(format!("looking up {id}")))?;
    found
        .map(|s| s.parse().map_err(StoreError::from))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_leave_the_connection_synchronous_full() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        let level = |c: &Connection| -> i64 {
            c.pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        let inside = unsynced(&conn, |c| Ok(level(c))).unwrap();
        assert_eq!(inside, 1, "NORMAL while writing");
        assert_eq!(level(&conn), 2, "FULL again");
        let failed = unsynced(&conn, |c| c.execute("INSERT INTO nowhere VALUES (1)", []));
        assert!(failed.is_err());
        assert_eq!(level(&conn), 2, "FULL again after an error");
    }
}
