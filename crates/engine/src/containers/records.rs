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

/// Opens the database and applies this service's migrations.
pub fn open(path: &Path) -> Result<Connection> {
    // Container state is re-derived from the shims at start-up anyway:
    // synchronous=NORMAL saves an fsync on the `run` path.
    berth_store::db::open_component(path, COMPONENT, MIGRATIONS)
        .map_err(|(context, e)| EngineError::db(context)(e))
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
    named_write(conn, r, res, "recording a container")
}

/// A write that sets a record's name: a taken name is a conflict.
fn named_write(
    conn: &Connection,
    r: &Record,
    res: rusqlite::Result<usize>,
    what: &'static str,
) -> Result<()> {
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(name_conflict(conn, &r.name))
        }
        Err(e) => Err(EngineError::db(what)(e)),
    }
}

/// Replaces a record.
pub fn update(conn: &Connection, r: &Record) -> Result<()> {
    conn.execute(
        "UPDATE containers SET record = ?2 WHERE id = ?1",
        rusqlite::params![r.id, encode(r)?],
    )
    .map_err(EngineError::db("updating a container"))?;
    Ok(())
}

/// Replaces a record under a new name; a taken name is a conflict.
pub fn rename(conn: &Connection, r: &Record) -> Result<()> {
    let res = conn.execute(
        "UPDATE containers SET name = ?2, record = ?3 WHERE id = ?1",
        rusqlite::params![r.id, r.name, encode(r)?],
    );
    named_write(conn, r, res, "renaming a container")
}

/// Docker's conflict for a taken name.
fn name_conflict(conn: &Connection, name: &str) -> EngineError {
    let holder: String = conn
        .query_row("SELECT id FROM containers WHERE name = ?1", [name], |row| {
            row.get(0)
        })
        .unwrap_or_default();
    EngineError::new(
        ErrorKind::Conflict,
        format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
        ),
    )
}

/// Deletes a record.
pub fn delete(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM containers WHERE id = ?1", [id])
        .map_err(EngineError::db("removing a container"))?;
    Ok(())
}

/// Every record.
pub fn all(conn: &Connection) -> Result<Vec<Record>> {
    let mut stmt = conn
        .prepare_cached("SELECT record FROM containers")
        .map_err(EngineError::db("listing containers"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(EngineError::db("listing containers"))?;
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

/// Whether a container has this name.
pub fn name_taken(conn: &Connection, name: &str) -> Result<bool> {
    conn.query_row("SELECT 1 FROM containers WHERE name = ?1", [name], |_| {
        Ok(())
    })
    .optional()
    .map(|r| r.is_some())
    .map_err(EngineError::db("checking a name"))
}

/// The record a name, ID or unique ID prefix designates, as Docker
/// resolves them (exact ID, then name, then prefix).
pub fn find(conn: &Connection, name: &str) -> Result<Record> {
    let key = name.trim_start_matches('/');
    let not_found = || EngineError::new(ErrorKind::NotFound, format!("No such container: {name}"));
    if key.is_empty() {
        return Err(not_found());
    }
    let exact: Option<String> = conn
        .query_row("SELECT record FROM containers WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1", [key], |r| r.get(0))
        .optional()
        .map_err(EngineError::db("finding a container"))?;
    let raw = match exact {
        Some(r) => r,
        None => {
            let mut stmt = conn
                .prepare_cached("SELECT record FROM containers WHERE id >= ?1 AND id < ?2 LIMIT 2")
                .map_err(EngineError::db("finding a container"))?;
            let hits: Vec<String> = stmt
                .query_map([key.to_owned(), format!("{key}g")], |r| r.get(0))
                .and_then(Iterator::collect)
                .map_err(EngineError::db("finding a container"))?;
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
