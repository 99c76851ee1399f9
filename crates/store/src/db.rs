//! The image metadata database (SQLite in WAL mode): images, tags, layers
//! with reference counts, and holds (containers or build-cache entries that
//! keep images and layers alive). Schema changes are numbered migrations
//! applied in order inside one transaction each, recorded in
//! `PRAGMA user_version`, so a crash mid-upgrade leaves the old schema.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::{Result, StoreError};

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE layers (
        chain_id   TEXT PRIMARY KEY,
        diff_id    TEXT NOT NULL,
        parent     TEXT REFERENCES layers(chain_id),
        size       INTEGER NOT NULL,
        blob       TEXT NOT NULL,
        blob_size  INTEGER NOT NULL,
        media_type TEXT NOT NULL,
        refs       INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0)
    );
    CREATE TABLE images (
        id         TEXT PRIMARY KEY,
        created    TEXT,
        size       INTEGER NOT NULL,
        added_at   INTEGER NOT NULL
    );
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        idx      INTEGER NOT NULL,
        chain_id TEXT NOT NULL REFERENCES layers(chain_id),
        PRIMARY KEY (image_id, idx)
    );
    CREATE INDEX image_layers_chain ON image_layers(chain_id);
    CREATE TABLE tags (
        name     TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id),
        added_at INTEGER NOT NULL
    );
    CREATE INDEX tags_image ON tags(image_id);
    CREATE TABLE holds (
        holder TEXT NOT NULL,
        kind   TEXT NOT NULL CHECK (kind IN ('image', 'layer', 'blob')),
        target TEXT NOT NULL,
        PRIMARY KEY (holder, kind, target)
    );
    CREATE INDEX holds_target ON holds(kind, target);",
    // 2: the image an image was made from (`docker commit`, build steps):
    // Docker's `Parent`; intermediate build images are listed only with -a.
    "ALTER TABLE images ADD COLUMN parent TEXT;
    CREATE INDEX images_parent ON images(parent);",
    // 3: the manifest digests images were pulled by (`repo@sha256:…`):
    // Docker's RepoDigests; a pull or run by digest finds them.
    "CREATE TABLE repo_digests (
        name     TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX repo_digests_image ON repo_digests(image_id);",
    // 4: the gzip a push made of a layer stored uncompressed (dockerd's
    // v2 metadata): the next push asks the registry for it by digest, and
    // mounts it, without compressing it again. Content-derived (berth's
    // gzip depends on the input only), so never stale.
    "CREATE TABLE pushed_forms (
        blob   TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        size   INTEGER NOT NULL
    );
    CREATE INDEX pushed_forms_digest ON pushed_forms(digest);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// A write transaction, holding the write lock from its start (waiting
/// for it up to the busy timeout). A deferred one that reads first cannot
/// wait: if another connection (the build cache's, the engine's) writes
/// between its read and its first write, SQLite answers "database is
/// locked" at once.
pub fn write_tx<'c>(conn: &'c Connection, what: &str) -> Result<rusqlite::Transaction<'c>> {
    rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::db(format!("starting {what}")))
}

/// Opens (creating) the database and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    let mut conn =
        Connection::open(path).map_err(StoreError::db(format!("opening {}", path.display())))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(StoreError::db("enabling WAL"))?;
    // FULL: a committed transaction survives power loss, not only a crash.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::db("setting synchronous"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(StoreError::db("enabling foreign keys"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(StoreError::db("setting busy timeout"))?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(StoreError::db("reading schema version"))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Invalid(format!(
            "the metadata database has schema version {current}, newer than this berth ({SCHEMA_VERSION}); upgrade berth"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::db("starting migration"))?;
        tx.execute_batch(sql)
            .map_err(StoreError::db(format!("migration {}", i + 1)))?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(StoreError::db("recording schema version"))?;
        tx.commit()
            .map_err(StoreError::db(format!("committing migration {}", i + 1)))?;
    }
    Ok(())
}

/// Opens the database for another component (a service with tables of
/// its own: containers, the build cache) and applies that component's
/// migrations, counted in a `migrations(component, version)` table. WAL
/// with `synchronous=NORMAL`: a commit survives a crash of any process and
/// the database is never inconsistent; only a power loss may roll back the
/// last commits. Errors carry the step that failed.
pub fn open_component(
    path: &Path,
    component: &str,
    migrations: &[&str],
) -> std::result::Result<Connection, (&'static str, rusqlite::Error)> {
    let mut conn = Connection::open(path).map_err(|e| ("opening", e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| ("enabling WAL", e))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| ("setting synchronous", e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| ("enabling foreign keys", e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| ("setting the busy timeout", e))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    )
    .map_err(|e| ("creating the migrations table", e))?;
    let done: usize = conn
        .query_row(
            "SELECT version FROM migrations WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| ("reading the schema version", e))?
        .unwrap_or(0);
    for (i, sql) in migrations.iter().enumerate().skip(done) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| ("starting a migration", e))?;
        tx.execute_batch(sql).map_err(|e| ("migrating", e))?;
        tx.execute(
            "INSERT INTO migrations (component, version) VALUES (?1, ?2)
             ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            rusqlite::params![component, i + 1],
        )
        .map_err(|e| ("recording the schema version", e))?;
        tx.commit().map_err(|e| ("committing a migration", e))?;
    }
    Ok(conn)
}

/// A layer row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    pub chain_id: String,
    pub diff_id: String,
    pub parent: Option<String>,
    pub size: u64,
    pub blob: String,
    pub blob_size: u64,
    pub media_type: String,
    pub refs: u64,
}

/// Reads a layer row.
pub fn layer(conn: &Connection, chain_id: &str) -> Result<Option<LayerRow>> {
    conn.query_row(
        "SELECT chain_id, diff_id, parent, size, blob, blob_size, media_type, refs FROM layers WHERE chain_id = ?1",
        [chain_id],
        |r| {
            Ok(LayerRow {
                chain_id: r.get(0)?,
                diff_id: r.get(1)?,
                parent: r.get(2)?,
                size: r.get(3)?,
                blob: r.get(4)?,
                blob_size: r.get(5)?,
                media_type: r.get(6)?,
                refs: r.get(7)?,
            })
        },
    )
    .optional()
    .map_err(StoreError::db(format!("reading layer {chain_id}")))
}

/// Inserts a layer row unless present.
pub fn insert_layer(tx: &Transaction<'_>, l: &LayerRow) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size, blob, blob_size, media_type, refs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
        rusqlite::params![l.chain_id, l.diff_id, l.parent, l.size, l.blob, l.blob_size, l.media_type],
    )
    .map_err(StoreError::db(format!("recording layer {}", l.chain_id)))?;
    Ok(())
}

/// The first column of every row `sql` returns for `params`.
pub fn strings(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    context: &str,
) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql).map_err(StoreError::db(context))?;
    let rows = stmt
        .query_map(params, |r| r.get(0))
        .and_then(Iterator::collect);
    rows.map_err(StoreError::db(context))
}

/// Like [`strings`], each parsed as a digest.
pub fn digests(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    context: &str,
) -> Result<Vec<berth_image::Digest>> {
    strings(conn, sql, params, context)?
        .iter()
        .map(|s| s.parse().map_err(StoreError::from))
        .collect()
}

/// The layer chain of an image, bottom first.
pub fn image_chain(conn: &Connection, image_id: &str) -> Result<Vec<String>> {
    let sql = "SELECT chain_id FROM image_layers WHERE image_id = ?1 ORDER BY idx";
    strings(
        conn,
        sql,
        [image_id],
        &format!("reading layers of {image_id}"),
    )
}

/// Tags pointing at an image, sorted.
pub fn image_tags(conn: &Connection, image_id: &str) -> Result<Vec<String>> {
    let sql = "SELECT name FROM tags WHERE image_id = ?1 ORDER BY name";
    strings(
        conn,
        sql,
        [image_id],
        &format!("reading tags of {image_id}"),
    )
}

/// The `repo@digest` names of an image.
pub fn image_digests(conn: &Connection, image_id: &str) -> Result<Vec<String>> {
    let sql = "SELECT name FROM repo_digests WHERE image_id = ?1 ORDER BY name";
    strings(
        conn,
        sql,
        [image_id],
        &format!("reading repo digests of {image_id}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_transaction_holds_the_write_lock_from_its_start() {
        // Another connection cannot write between its read and its write
        // (a deferred one would let it, then fail with "locked").
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let a = open(&path).unwrap();
        let b = open(&path).unwrap();
        b.busy_timeout(std::time::Duration::ZERO).unwrap();
        let insert = "INSERT INTO images (id, created, size, added_at) VALUES (?1, NULL, 0, 0)";
        let tx = write_tx(&a, "a test").unwrap();
        let n: i64 = tx
            .query_row("SELECT count(*) FROM images", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        let err = b.execute(insert, ["other"]).unwrap_err();
        assert!(err.to_string().contains("locked"), "{err}");
        tx.execute(insert, ["mine"]).unwrap();
        tx.commit().unwrap();
        b.execute(insert, ["other"]).unwrap();
    }

    #[test]
    fn migrations_run_once_and_record_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let conn = open(&path).unwrap();
        let v: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        open(&path).unwrap(); // re-open: nothing to migrate, no error
    }

    #[test]
    fn a_newer_schema_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let conn = open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err().to_string();
        assert!(err.contains("newer than this berth"), "{err}");
    }
}
