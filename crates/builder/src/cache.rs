//! The build cache index: a step's cache key → the image its step made.
//! Kept in the metadata database (`build_cache`, this component's table);
//! an entry goes with its image (a foreign key, `ON DELETE CASCADE`), so
//! `docker rmi` and prune never leave an entry pointing at nothing. Each
//! entry records how long its step took, for the build planner.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use berth_image::Digest;
use rusqlite::{Connection, OptionalExtension};

use crate::error::{BuildError, Result};

const COMPONENT: &str = "build_cache";
const MIGRATIONS: &[&str] = &["CREATE TABLE build_cache (
    key         TEXT PRIMARY KEY,
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    description TEXT NOT NULL,
    created     INTEGER NOT NULL,
    last_used   INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    uses        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX build_cache_image ON build_cache(image_id);"];

/// One cached step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub key: String,
    pub image: Digest,
    /// The instruction, as history shows it.
    pub description: String,
    /// Unix seconds.
    pub created: i64,
    pub last_used: i64,
    /// How long the step took when it ran.
    pub duration: Duration,
    /// How many builds reused it.
    pub uses: u64,
}

/// The build cache index.
#[derive(Debug)]
pub struct CacheIndex {
    conn: Mutex<Connection>,
    /// Who uses which cache mount (`RUN --mount=type=cache,sharing=…`),
    /// across the daemon's builds.
    pub mounts: MountLocks,
}

/// Cache mount ids in use by a step that asked to be alone with them.
#[derive(Debug, Default)]
pub struct MountLocks {
    busy: Mutex<std::collections::HashSet<String>>,
    freed: std::sync::Condvar,
}

/// A cache mount held until dropped.
#[derive(Debug)]
pub struct MountGuard<'a> {
    locks: &'a MountLocks,
    id: String,
}

impl MountLocks {
    fn busy(&self) -> MutexGuard<'_, std::collections::HashSet<String>> {
        self.busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until no other step holds `id`, then holds it.
    pub fn lock(&self, id: &str) -> MountGuard<'_> {
        let mut busy = self.busy();
        while busy.contains(id) {
            busy = self
                .freed
                .wait(busy)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        busy.insert(id.to_owned());
        MountGuard {
            locks: self,
            id: id.to_owned(),
        }
    }

    /// Holds `id` if no other step does.
    pub fn try_lock(&self, id: &str) -> Option<MountGuard<'_>> {
        let mut busy = self.busy();
        busy.insert(id.to_owned()).then(|| MountGuard {
            locks: self,
            id: id.to_owned(),
        })
    }
}

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        self.locks.busy().remove(&self.id);
        self.locks.freed.notify_all();
    }
}

impl CacheIndex {
    /// Opens the index in the metadata database at `db` (the image store's
    /// `berth.db`: its `images` table must exist).
    pub fn open(db: &Path) -> Result<Self> {
        let conn = berth_store::db::open_component(db, COMPONENT, MIGRATIONS)
            .map_err(|(context, e)| BuildError::cache(context)(e))?;
        Ok(Self {
            conn: Mutex::new(conn),
            mounts: MountLocks::default(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The image a key names, if cached; counts the use.
    pub fn get(&self, key: &str) -> Result<Option<Digest>> {
        let conn = self.conn();
        let image: Option<String> = conn
            .query_row(
                "SELECT image_id FROM build_cache WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(BuildError::cache("looking up a step"))?;
        let Some(image) = image else {
            return Ok(None);
        };
        conn.execute(
            "UPDATE build_cache SET last_used = ?2, uses = uses + 1 WHERE key = ?1",
            rusqlite::params![key, chrono::Utc::now().timestamp()],
        )
        .map_err(BuildError::cache("recording a cache use"))?;
        let image = image
            .parse()
            .map_err(|e| BuildError::Invalid(format!("build cache entry {key}: {e}")))?;
        Ok(Some(image))
    }

    /// Records what a step made.
    pub fn put(&self, key: &str, image: &Digest, description: &str, took: Duration) -> Result<()> {
        let now = chrono::Utc::now().timestamp();
        let ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
        self.conn()
            .execute(
                "INSERT INTO build_cache (key, image_id, description, created, last_used, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)
                 ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id,
                   description = excluded.description, last_used = excluded.last_used,
                   duration_ms = excluded.duration_ms",
                rusqlite::params![key, image.to_string(), description, now, ms],
            )
            .map_err(BuildError::cache("recording a step"))?;
        Ok(())
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Result<Vec<CacheEntry>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT key, image_id, description, created, last_used, duration_ms, uses
                 FROM build_cache ORDER BY created, key",
            )
            .map_err(BuildError::cache("listing"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(BuildError::cache("listing"))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, image, description, created, last_used, ms, uses) =
                row.map_err(BuildError::cache("listing"))?;
            out.push(CacheEntry {
                image: image
                    .parse()
                    .map_err(|e| BuildError::Invalid(format!("build cache entry {key}: {e}")))?,
                key,
                description,
                created,
                last_used,
                duration: Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
                uses: u64::try_from(uses).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// The recorded durations of steps by description (the newest entry
    /// of each), for the planner's costs.
    pub fn durations(&self) -> Result<std::collections::BTreeMap<String, Duration>> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|e| (e.description, e.duration))
            .collect())
    }

    /// Forgets every entry; returns them.
    pub fn clear(&self) -> Result<Vec<CacheEntry>> {
        let entries = self.entries()?;
        self.conn()
            .execute("DELETE FROM build_cache", [])
            .map_err(BuildError::cache("clearing"))?;
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_mount_has_one_user_at_a_time() {
        let locks = MountLocks::default();
        let held = locks.lock("m");
        assert!(locks.try_lock("m").is_none(), "held twice");
        assert!(locks.try_lock("other").is_some());
        let waited = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _g = locks.lock("m");
                waited.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !waited.load(std::sync::atomic::Ordering::SeqCst),
                "got in while held"
            );
            drop(held);
        });
        assert!(waited.load(std::sync::atomic::Ordering::SeqCst));
        assert!(locks.try_lock("m").is_some(), "not released");
    }
}
