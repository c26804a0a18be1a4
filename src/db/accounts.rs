//! Streamwarden accounts (people who sign in), not media server users.

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::auth::model::Role;
use crate::error::{AppError, AppResult};

const BY_ID: &str = "SELECT id, username, role, password_hash, media_user_id, disabled, email, oidc_issuer, oidc_subject, created_at, last_login_at, last_oidc_login_at FROM accounts WHERE id = ?1";
const BY_USERNAME: &str = "SELECT id, username, role, password_hash, media_user_id, disabled, email, oidc_issuer, oidc_subject, created_at, last_login_at, last_oidc_login_at FROM accounts WHERE username = ?1 COLLATE NOCASE";
const BY_OIDC: &str = "SELECT id, username, role, password_hash, media_user_id, disabled, email, oidc_issuer, oidc_subject, created_at, last_login_at, last_oidc_login_at FROM accounts WHERE oidc_issuer = ?1 AND oidc_subject = ?2";
const BY_EMAIL: &str = "SELECT id, username, role, password_hash, media_user_id, disabled, email, oidc_issuer, oidc_subject, created_at, last_login_at, last_oidc_login_at FROM accounts WHERE email = ?1 COLLATE NOCASE ORDER BY id";
const ALL: &str = "SELECT id, username, role, password_hash, media_user_id, disabled, email, oidc_issuer, oidc_subject, created_at, last_login_at, last_oidc_login_at FROM accounts ORDER BY username COLLATE NOCASE";
const INSERT: &str = "INSERT INTO accounts (username, role, password_hash, media_user_id, email, oidc_issuer, oidc_subject, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";
const COUNT_ADMINS: &str = "SELECT count(*) FROM accounts WHERE role = 'admin' AND disabled = 0";
const COUNT_ALL: &str = "SELECT count(*) FROM accounts";
const OIDC_ADMIN_SIGNED_IN: &str = "SELECT EXISTS (SELECT 1 FROM accounts WHERE role = 'admin' AND disabled = 0 AND oidc_subject IS NOT NULL AND last_oidc_login_at IS NOT NULL)";
const SET_PASSWORD: &str = "UPDATE accounts SET password_hash = ?2, updated_at = ?3 WHERE id = ?1";
const SET_ROLE: &str = "UPDATE accounts SET role = ?2, updated_at = ?3 WHERE id = ?1";
const SET_MEDIA_USER: &str =
    "UPDATE accounts SET media_user_id = ?2, updated_at = ?3 WHERE id = ?1";
const SET_DISABLED: &str = "UPDATE accounts SET disabled = ?2, updated_at = ?3 WHERE id = ?1";
const SET_OIDC: &str = "UPDATE accounts SET oidc_issuer = ?2, oidc_subject = ?3, email = coalesce(?4, email), updated_at = ?5 WHERE id = ?1";
const UNLINK_OIDC: &str =
    "UPDATE accounts SET oidc_issuer = NULL, oidc_subject = NULL, updated_at = ?2 WHERE id = ?1";
const TOUCH_LOGIN: &str = "UPDATE accounts SET last_login_at = ?2 WHERE id = ?1";
const TOUCH_OIDC_LOGIN: &str =
    "UPDATE accounts SET last_login_at = ?2, last_oidc_login_at = ?2 WHERE id = ?1";
const DELETE: &str = "DELETE FROM accounts WHERE id = ?1";
const MEDIA_USERS: &str = "SELECT mu.id, mu.name, s.name FROM media_users mu JOIN servers s ON s.id = mu.server_id WHERE s.deleted_at IS NULL ORDER BY mu.name COLLATE NOCASE, s.name";
const MEDIA_USER_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM media_users WHERE id = ?1)";

#[cfg(test)]
pub(crate) const STATEMENTS: &[&str] = &[
    BY_ID,
    BY_USERNAME,
    BY_OIDC,
    BY_EMAIL,
    ALL,
    INSERT,
    COUNT_ADMINS,
    COUNT_ALL,
    OIDC_ADMIN_SIGNED_IN,
    SET_PASSWORD,
    SET_ROLE,
    SET_MEDIA_USER,
    SET_DISABLED,
    SET_OIDC,
    UNLINK_OIDC,
    TOUCH_LOGIN,
    TOUCH_OIDC_LOGIN,
    DELETE,
    MEDIA_USERS,
    MEDIA_USER_EXISTS,
];

/// One account row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// argon2id PHC string; `None` when the account cannot sign in with a password.
    pub password_hash: Option<String>,
    pub media_user_id: Option<i64>,
    pub disabled: bool,
    pub email: Option<String>,
    pub oidc_issuer: Option<String>,
    pub oidc_subject: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub last_oidc_login_at: Option<i64>,
}

/// A new account to insert.
#[derive(Debug, Clone, Default)]
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub role: Option<Role>,
    pub password_hash: Option<&'a str>,
    pub media_user_id: Option<i64>,
    pub email: Option<&'a str>,
    /// `(issuer, subject)` of a linked OpenID Connect identity.
    pub oidc: Option<(&'a str, &'a str)>,
}

pub(crate) fn role_str(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Viewer => "viewer",
    }
}

fn parse_role(s: &str) -> Role {
    if s == "admin" { Role::Admin } else { Role::Viewer }
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let role: String = r.get(2)?;
    Ok(Account {
        id: r.get(0)?,
        username: r.get(1)?,
        role: parse_role(&role),
        password_hash: r.get(3)?,
        media_user_id: r.get(4)?,
        disabled: r.get(5)?,
        email: r.get(6)?,
        oidc_issuer: r.get(7)?,
        oidc_subject: r.get(8)?,
        created_at: r.get(9)?,
        last_login_at: r.get(10)?,
        last_oidc_login_at: r.get(11)?,
    })
}

fn one(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> AppResult<Option<Account>> {
    Ok(conn.prepare_cached(sql)?.query_row(params, from_row).optional()?)
}

pub fn by_id(conn: &Connection, id: i64) -> AppResult<Option<Account>> {
    one(conn, BY_ID, [id])
}

pub fn by_username(conn: &Connection, username: &str) -> AppResult<Option<Account>> {
    one(conn, BY_USERNAME, [username])
}

pub fn by_oidc(conn: &Connection, issuer: &str, subject: &str) -> AppResult<Option<Account>> {
    one(conn, BY_OIDC, [issuer, subject])
}

/// Accounts with this email address (case-insensitive), oldest first.
pub fn by_email(conn: &Connection, email: &str) -> AppResult<Vec<Account>> {
    let mut stmt = conn.prepare_cached(BY_EMAIL)?;
    let rows = stmt.query_map([email], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every account, by name.
pub fn all(conn: &Connection) -> AppResult<Vec<Account>> {
    let mut stmt = conn.prepare_cached(ALL)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Inserts an account; a taken username is a [`AppError::Conflict`].
pub fn insert(conn: &Connection, new: &NewAccount<'_>) -> AppResult<i64> {
    let (issuer, subject) = new.oidc.unzip();
    let result = conn.prepare_cached(INSERT)?.execute(params![
        new.username,
        role_str(new.role.unwrap_or(Role::Viewer)),
        new.password_hash,
        new.media_user_id,
        new.email,
        issuer,
        subject,
        crate::time::now_ms(),
    ]);
    match result {
        Ok(_) => Ok(conn.last_insert_rowid()),
        Err(e) if is_unique_violation(&e) => {
            Err(AppError::Conflict(format!("An account named {} already exists.", new.username)))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation))
        && e.to_string().contains("UNIQUE")
}

/// Enabled admins.
pub fn count_admins(conn: &Connection) -> AppResult<i64> {
    Ok(conn.prepare_cached(COUNT_ADMINS)?.query_row([], |r| r.get(0))?)
}

pub fn count(conn: &Connection) -> AppResult<i64> {
    Ok(conn.prepare_cached(COUNT_ALL)?.query_row([], |r| r.get(0))?)
}

/// True once an enabled admin has signed in through OpenID Connect (the condition for
/// turning local sign-in off).
pub fn oidc_admin_has_signed_in(conn: &Connection) -> AppResult<bool> {
    Ok(conn.prepare_cached(OIDC_ADMIN_SIGNED_IN)?.query_row([], |r| r.get(0))?)
}

pub fn set_password(conn: &Connection, id: i64, hash: Option<&str>) -> AppResult<()> {
    conn.prepare_cached(SET_PASSWORD)?.execute(params![id, hash, crate::time::now_ms()])?;
    Ok(())
}

pub fn set_role(conn: &Connection, id: i64, role: Role) -> AppResult<()> {
    conn.prepare_cached(SET_ROLE)?.execute(params![id, role_str(role), crate::time::now_ms()])?;
    Ok(())
}

pub fn set_media_user(conn: &Connection, id: i64, media_user_id: Option<i64>) -> AppResult<()> {
    conn.prepare_cached(SET_MEDIA_USER)?.execute(params![
        id,
        media_user_id,
        crate::time::now_ms()
    ])?;
    Ok(())
}

pub fn set_disabled(conn: &Connection, id: i64, disabled: bool) -> AppResult<()> {
    conn.prepare_cached(SET_DISABLED)?.execute(params![id, disabled, crate::time::now_ms()])?;
    Ok(())
}

/// Links an OpenID Connect identity (and records its email if given).
pub fn set_oidc(
    conn: &Connection,
    id: i64,
    issuer: &str,
    subject: &str,
    email: Option<&str>,
) -> AppResult<()> {
    conn.prepare_cached(SET_OIDC)?.execute(params![
        id,
        issuer,
        subject,
        email,
        crate::time::now_ms()
    ])?;
    Ok(())
}

pub fn unlink_oidc(conn: &Connection, id: i64) -> AppResult<()> {
    conn.prepare_cached(UNLINK_OIDC)?.execute(params![id, crate::time::now_ms()])?;
    Ok(())
}

pub fn touch_login(conn: &Connection, id: i64, oidc: bool) -> AppResult<()> {
    let sql = if oidc { TOUCH_OIDC_LOGIN } else { TOUCH_LOGIN };
    conn.prepare_cached(sql)?.execute(params![id, crate::time::now_ms()])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> AppResult<()> {
    conn.prepare_cached(DELETE)?.execute([id])?;
    Ok(())
}

/// A media user an account can be linked to: `(id, name, server name)`.
pub fn media_users(conn: &Connection) -> AppResult<Vec<(i64, String, String)>> {
    let mut stmt = conn.prepare_cached(MEDIA_USERS)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn media_user_exists(conn: &Connection, id: i64) -> AppResult<bool> {
    Ok(conn.prepare_cached(MEDIA_USER_EXISTS)?.query_row([id], |r| r.get(0))?)
}
