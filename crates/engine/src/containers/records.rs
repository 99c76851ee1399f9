//! Container records in the metadata database (`containers` table, owned
//! by this service, with its own migration counter in `migrations`).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::model::Record;
use crate::error::{EngineError, ErrorKind, Result};

const COMPONENT: &str = "containers";
const MIGRATIONS: &[&str] = &["CREATE TABLE containers (
    id     TEXT PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);"];

fn db_err(context: &str) -> impl FnOnce(rusqlite::Error) -> EngineError + '_ {
    move |e| {
        EngineError::new(
            ErrorKind::Internal,
            format!("metadata database: {context}: {e}"),
        )
    }
}

/// Opens the database and applies this service's migrations.
pub fn open(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path).map_err(db_err("opening"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db_err("enabling WAL"))?;
    // WAL with NORMAL: a commit survives a crash of any process (kill -9
    // included) and the database is never left inconsistent; only a power
    // loss may roll back the last commits. Container state is re-derived
    // from the shims at start-up anyway, and each commit saves an fsync on
    // the `run` path. (The image store keeps FULL on its own connection.)
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(db_err("setting synchronous"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db_err("busy timeout"))?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        .map_err(db_err("creating the migrations table"))?;
    let done: usize = conn
        .query_row(
            "SELECT version FROM migrations WHERE component = ?1",
            [COMPONENT],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err("reading the schema version"))?
        .unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction().map_err(db_err("starting a migration"))?;
        tx.execute_batch(sql).map_err(db_err("migrating"))?;
        tx.execute(
            "INSERT INTO migrations (component, version) VALUES (?1, ?2)
             ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            rusqlite::params![COMPONENT, i + 1],
        )
        .map_err(db_err("recording the schema version"))?;
        tx.commit().map_err(db_err("committing a migration"))?;
    }
    Ok(conn)
}

fn encode(r: &Record) -> Result<String> {
    serde_json::to_string(r).map_err(|e| EngineError::new(ErrorKind::Internal, e.to_string()))
}

/// Inserts a new record; a taken name is a conflict.
pub fn insert(conn: &Connection, r: &Record) -> Result<()> {
    let res = conn.execute(
        "INSERT INTO containers (id, name, record) VALUES (?1, ?2, ?3)",
        rusqlite::params![r.id, r.name, encode(r)?],
    );
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            let holder: String = conn
                .query_row(
                    "SELECT id FROM containers WHERE name = ?1",
                    [&r.name],
                    |row| row.get(0),
                )
                .unwrap_or_default();
            Err(EngineError::new(
                ErrorKind::Conflict,
                format!(
                    "Conflict. The container name \"/{}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name.",
                    r.name
                ),
            ))
        }
        Err(e) => Err(db_err("recording a container")(e)),
    }
}

/// Replaces a record.
pub fn update(conn: &Connection, r: &Record) -> Result<()> {
    conn.execute(
        "UPDATE containers SET record = ?2 WHERE id = ?1",
        rusqlite::params![r.id, encode(r)?],
    )
    .map_err(db_err("updating a container"))?;
    Ok(())
}

/// Deletes a record.
pub fn delete(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM containers WHERE id = ?1", [id])
        .map_err(db_err("removing a container"))?;
    Ok(())
}

/// Every record.
pub fn all(conn: &Connection) -> Result<Vec<Record>> {
    let mut stmt = conn
        .prepare_cached("SELECT record FROM containers")
        .map_err(db_err("listing containers"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(db_err("listing containers"))?;
    rows.iter()
        .map(|s| {
            serde_json::from_str(s).map_err(|e| {
                EngineError::new(
                    ErrorKind::Internal,
                    format!("a container record is unreadable: {e}"),
                )
            })
        })
        .collect()
}

/// The record a name, ID or unique ID prefix designates, as Docker
/// resolves them (exact ID, then name, then prefix).
/// Whether a container has this name.
pub fn name_taken(conn: &Connection, name: &str) -> Result<bool> {
    conn.query_row("SELECT 1 FROM containers WHERE name = ?1", [name], |_| {
        Ok(())
    })
    .optional()
    .map(|r| r.is_some())
    .map_err(db_err("checking a name"))
}

pub fn find(conn: &Connection, name: &str) -> Result<Record> {
    let key = name.trim_start_matches('/');
    let not_found = || EngineError::new(ErrorKind::NotFound, format!("No such container: {name}"));
    if key.is_empty() {
        return Err(not_found());
    }
    let exact: Option<String> = conn
        .query_row("SELECT record FROM containers WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1", [key], |r| r.get(0))
        .optional()
        .map_err(db_err("finding a container"))?;
    let raw = match exact {
        Some(r) => r,
        None => {
            let mut stmt = conn
                .prepare_cached("SELECT record FROM containers WHERE id >= ?1 AND id < ?2 LIMIT 2")
                .map_err(db_err("finding a container"))?;
            let hits: Vec<String> = stmt
                .query_map([key.to_owned(), format!("{key}g")], |r| r.get(0))
                .and_then(Iterator::collect)
                .map_err(db_err("finding a container"))?;
            match hits.as_slice() {
                [one] => one.clone(),
                [] => return Err(not_found()),
                _ => {
                    return Err(EngineError::invalid(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )))
                }
            }
        }
    };
    serde_json::from_str(&raw).map_err(|e| {
        EngineError::new(
            ErrorKind::Internal,
            format!("container record unreadable: {e}"),
        )
    })
}
