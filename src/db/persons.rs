//! Persons: one human behind several media accounts (`persons`, `media_users.person_id`,
//! `person_dismissals`). What may be linked and how is `crate::persons`'.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::error::AppResult;

const ACCOUNTS: &str = "SELECT u.id, u.server_id, s.name, u.name, u.person_id \
     FROM media_users u JOIN servers s ON s.id = u.server_id WHERE s.deleted_at IS NULL ORDER BY u.id";
const DISMISSED: &str = "SELECT user_a, user_b FROM person_dismissals";
const DISMISS: &str =
    "INSERT OR IGNORE INTO person_dismissals (user_a, user_b, dismissed_at) VALUES (?1, ?2, ?3)";
const LIST: &str = "SELECT id, name, created_at FROM persons ORDER BY name COLLATE NOCASE, id";
const GET: &str = "SELECT id, name, created_at FROM persons WHERE id = ?1";
const MEMBERS: &str = "SELECT u.id, u.server_id, s.name, u.name, u.person_id \
     FROM media_users u JOIN servers s ON s.id = u.server_id WHERE u.person_id = ?1 ORDER BY s.name, u.name, u.id";
const INSERT: &str = "INSERT INTO persons (name, created_at) VALUES (?1, ?2) RETURNING id";
const RENAME: &str = "UPDATE persons SET name = ?2 WHERE id = ?1";
const SET_PERSON: &str = "UPDATE media_users SET person_id = ?2 WHERE id = ?1";
const DELETE: &str = "DELETE FROM persons WHERE id = ?1";
/// The account itself and every account linked with it.
const ACCOUNTS_OF: &str = "SELECT id FROM media_users WHERE id = ?1 \
     OR (person_id IS NOT NULL AND person_id = (SELECT person_id FROM media_users WHERE id = ?1)) ORDER BY id";
const REFS: &str =
    "SELECT u.id, p.id, p.name FROM media_users u JOIN persons p ON p.id = u.person_id";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[
    ACCOUNTS,
    DISMISSED,
    DISMISS,
    LIST,
    GET,
    MEMBERS,
    INSERT,
    RENAME,
    SET_PERSON,
    DELETE,
    ACCOUNTS_OF,
    REFS,
];

/// A person as the API names it beside a user: `person{id, name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonRef {
    pub id: i64,
    pub name: String,
}

/// A person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: i64,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A media account as linking sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: i64,
    pub server_id: i64,
    pub server_name: String,
    pub name: String,
    pub person_id: Option<i64>,
}

fn account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        server_id: r.get(1)?,
        server_name: r.get(2)?,
        name: r.get(3)?,
        person_id: r.get(4)?,
    })
}

fn person(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)? })
}

/// Every account on a server that is not deleted.
pub fn accounts(conn: &Connection) -> AppResult<Vec<Account>> {
    let mut stmt = conn.prepare_cached(ACCOUNTS)?;
    let rows = stmt.query_map([], account)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Pairs of accounts an admin said are different people, `(smaller id, larger id)`.
pub fn dismissed(conn: &Connection) -> AppResult<HashSet<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(DISMISSED)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records that `a` and `b` are different people.
pub fn dismiss(conn: &Connection, a: i64, b: i64, now: i64) -> AppResult<()> {
    conn.prepare_cached(DISMISS)?.execute(params![a.min(b), a.max(b), now])?;
    Ok(())
}

pub fn list(conn: &Connection) -> AppResult<Vec<Person>> {
    let mut stmt = conn.prepare_cached(LIST)?;
    let rows = stmt.query_map([], person)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Connection, id: i64) -> AppResult<Option<Person>> {
    Ok(conn.prepare_cached(GET)?.query_row([id], person).optional()?)
}

/// The accounts of a person, by server.
pub fn members(conn: &Connection, person_id: i64) -> AppResult<Vec<Account>> {
    let mut stmt = conn.prepare_cached(MEMBERS)?;
    let rows = stmt.query_map([person_id], account)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert(conn: &Connection, name: &str, now: i64) -> AppResult<i64> {
    Ok(conn.prepare_cached(INSERT)?.query_row(params![name, now], |r| r.get(0))?)
}

pub fn rename(conn: &Connection, id: i64, name: &str) -> AppResult<()> {
    conn.prepare_cached(RENAME)?.execute(params![id, name])?;
    Ok(())
}

/// Links an account to a person (`None`: stands alone again).
pub fn set_person(conn: &Connection, user_id: i64, person_id: Option<i64>) -> AppResult<()> {
    conn.prepare_cached(SET_PERSON)?.execute(params![user_id, person_id])?;
    Ok(())
}

/// Deletes a person; its accounts stand alone again (`ON DELETE SET NULL`).
pub fn delete(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(DELETE)?.execute([id])? > 0)
}

/// The account and the others of its person, ascending; just the account when it stands
/// alone (or `[user_id]` when no such account exists).
pub fn accounts_of(conn: &Connection, user_id: i64) -> AppResult<Vec<i64>> {
    let mut stmt = conn.prepare_cached(ACCOUNTS_OF)?;
    let ids: Vec<i64> = stmt.query_map([user_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(if ids.is_empty() { vec![user_id] } else { ids })
}

/// The person of every linked account.
pub fn refs(conn: &Connection) -> AppResult<HashMap<i64, PersonRef>> {
    let mut stmt = conn.prepare_cached(REFS)?;
    let rows =
        stmt.query_map([], |r| Ok((r.get(0)?, PersonRef { id: r.get(1)?, name: r.get(2)? })))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
