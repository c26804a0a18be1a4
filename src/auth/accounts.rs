//! What can happen to accounts: first-run setup, password sign-in, and the admin's changes.
//! Every change is written to the audit log with who did it, in the same transaction.

use std::net::IpAddr;

use rusqlite::Connection;
use serde_json::json;

use super::limiter::{self, PER_ACCOUNT, PER_IP};
use super::{Auth, AuthUser, Role, password};
use crate::db::accounts::{self as rows, Account, NewAccount};
use crate::db::{Db, audit, sessions};
use crate::error::{AppError, AppResult};

/// Who does something, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `user:alice`, `api-key:ci`, `system`.
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn new(name: impl Into<String>, ip: Option<IpAddr>) -> Self {
        Self { name: name.into(), ip: ip.map(|ip| ip.to_string()) }
    }
}

/// Writes one audit entry.
pub fn audit(
    conn: &Connection,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    details: Option<serde_json::Value>,
) -> AppResult<()> {
    audit::record(
        conn,
        &audit::NewEntry { actor: &actor.name, action, target, details, ip: actor.ip.as_deref() },
    )
}

/// Longest username we accept.
pub const MAX_USERNAME: usize = 64;

/// Trims and checks a username: 1 to 64 letters, digits and `.-_@+`.
pub fn validate_username(field: &str, username: &str) -> AppResult<String> {
    let name = username.trim();
    if name.is_empty() {
        return Err(AppError::validation(field, "Enter a username."));
    }
    if name.chars().count() > MAX_USERNAME {
        return Err(AppError::validation(field, format!("Use at most {MAX_USERNAME} characters.")));
    }
    if !name.chars().all(|c| c.is_alphanumeric() || ".-_@+".contains(c)) {
        return Err(AppError::validation(
            field,
            "Use letters, digits and . - _ @ + only (no spaces).",
        ));
    }
    Ok(name.to_owned())
}

fn user_of(account: &Account) -> AuthUser {
    AuthUser {
        id: account.id,
        username: account.username.clone(),
        role: account.role,
        media_user_id: account.media_user_id,
    }
}

/// Creates the first admin. Refused once any admin exists (two browsers racing at setup).
pub async fn setup_admin(
    db: &Db,
    auth: &Auth,
    username: &str,
    password_text: &str,
    confirm: &str,
    ip: Option<IpAddr>,
) -> AppResult<AuthUser> {
    let username = validate_username("username", username)?;
    password::validate("password", password_text, &username)?;
    if password_text != confirm {
        return Err(AppError::validation("confirm", "The two passwords differ."));
    }
    let hash = auth.hashing.hash(password_text).await?;
    let actor = Actor::new(format!("user:{username}"), ip);
    let user = db
        .write(move |c| {
            let tx = c.transaction()?;
            if rows::count_admins(&tx)? > 0 {
                return Err(AppError::Conflict(
                    "Streamwarden is already set up. Sign in instead.".to_owned(),
                ));
            }
            let id = rows::insert(
                &tx,
                &NewAccount {
                    username: &username,
                    role: Some(Role::Admin),
                    password_hash: Some(&hash),
                    ..NewAccount::default()
                },
            )?;
            rows::touch_login(&tx, id, false)?;
            audit(&tx, &actor, "setup.admin_created", Some(&format!("account:{id}")), None)?;
            let account = rows::by_id(&tx, id)?.ok_or_else(|| AppError::not_found("account"))?;
            tx.commit()?;
            Ok(user_of(&account))
        })
        .await?;
    auth.mark_set_up();
    Ok(user)
}

/// The demo admin (`demo`, no usable password), created on first use.
pub async fn demo_admin(db: &Db, auth: &Auth, ip: Option<IpAddr>) -> AppResult<AuthUser> {
    let actor = Actor::new("user:demo", ip);
    let user = db
        .write(move |c| {
            let tx = c.transaction()?;
            let account = match rows::by_username(&tx, "demo")? {
                Some(a) if a.role == Role::Admin && !a.disabled => a,
                Some(_) => {
                    return Err(AppError::Conflict(
                        "An account named demo exists but is not an enabled admin.".to_owned(),
                    ));
                }
                None => {
                    let id = rows::insert(
                        &tx,
                        &NewAccount {
                            username: "demo",
                            role: Some(Role::Admin),
                            ..NewAccount::default()
                        },
                    )?;
                    audit(
                        &tx,
                        &actor,
                        "account.create",
                        Some(&format!("account:{id}")),
                        Some(json!({"username": "demo", "role": "admin", "demo": true})),
                    )?;
                    rows::by_id(&tx, id)?.ok_or_else(|| AppError::not_found("account"))?
                }
            };
            rows::touch_login(&tx, account.id, false)?;
            audit(
                &tx,
                &actor,
                "login",
                Some(&format!("account:{}", account.id)),
                Some(json!({"method": "demo"})),
            )?;
            tx.commit()?;
            Ok(user_of(&account))
        })
        .await?;
    auth.mark_set_up();
    Ok(user)
}

/// The rate-limit keys of a password attempt on `username` from `ip`. A username longer
/// than any account's is cut: it names no account, and must not grow the limiter's memory.
fn attempt_keys(username: &str, ip: Option<&str>) -> (String, Option<String>) {
    let name: String = username.trim().to_lowercase().chars().take(MAX_USERNAME + 1).collect();
    (format!("account:{name}"), ip.map(|ip| format!("ip:{ip}")))
}

/// Counts a password attempt against the account and the client address before the slow
/// hash, or refuses it while either is at its limit.
fn reserve_attempt(
    auth: &Auth,
    account_key: &str,
    ip_key: Option<&str>,
) -> AppResult<limiter::Reservation> {
    let mut keys = vec![(account_key, PER_ACCOUNT)];
    if let Some(key) = ip_key {
        keys.push((key, PER_IP));
    }
    auth.limiter.reserve(&keys).map_err(|wait| AppError::TooManyRequests {
        message: format!(
            "Too many failed sign-ins. Wait {} before trying again.",
            limiter::human(wait)
        ),
        retry_after: wait.as_secs().max(1),
    })
}

/// Checks a username and password, with rate limiting per account and per client address.
/// Failures are audited; the message never tells whether the account exists.
pub async fn password_sign_in(
    db: &Db,
    auth: &Auth,
    username: &str,
    password_text: &str,
    ip: Option<IpAddr>,
) -> AppResult<AuthUser> {
    let username = username.trim().to_owned();
    let (account_key, ip_key) = attempt_keys(&username, ip.map(|ip| ip.to_string()).as_deref());
    // Counted before the hash: parallel guesses cannot all pass a check made before any
    // of them has failed.
    let attempt = reserve_attempt(auth, &account_key, ip_key.as_deref())?;

    let lookup_name = username.clone();
    let account = if username.chars().count() > MAX_USERNAME {
        None
    } else {
        db.read(move |c| rows::by_username(c, &lookup_name)).await?
    };
    let hash = account.as_ref().filter(|a| !a.disabled).and_then(|a| a.password_hash.clone());
    let ok = auth.hashing.verify(password_text, hash).await?;
    let actor = Actor::new(format!("user:{username}"), ip);
    match account {
        Some(account) if ok => {
            auth.limiter.succeeded(attempt);
            auth.limiter.clear(&account_key);
            let id = account.id;
            db.write(move |c| {
                rows::touch_login(c, id, false)?;
                audit(
                    c,
                    &actor,
                    "login",
                    Some(&format!("account:{id}")),
                    Some(json!({"method": "password"})),
                )
            })
            .await?;
            Ok(user_of(&account))
        }
        account => {
            attempt.failed();
            let reason = match &account {
                None => "unknown account",
                Some(a) if a.disabled => "account disabled",
                Some(a) if a.password_hash.is_none() => "account has no password",
                Some(_) => "wrong password",
            };
            db.write(move |c| {
                audit(
                    c,
                    &actor,
                    "login.failed",
                    None,
                    Some(json!({"method": "password", "reason": reason})),
                )
            })
            .await?;
            Err(AppError::Unauthorized("Wrong username or password.".to_owned()))
        }
    }
}

/// What an admin fills in to create an account.
#[derive(Debug, Clone, Default)]
pub struct NewAccountInput {
    pub username: String,
    /// Empty: the account can only sign in through OpenID Connect.
    pub password: String,
    pub role: Option<Role>,
    pub media_user_id: Option<i64>,
}

pub async fn create(db: &Db, auth: &Auth, actor: Actor, input: NewAccountInput) -> AppResult<i64> {
    let username = validate_username("username", &input.username)?;
    let hash = if input.password.is_empty() {
        None
    } else {
        password::validate("password", &input.password, &username)?;
        Some(auth.hashing.hash(&input.password).await?)
    };
    let role = input.role.unwrap_or(Role::Viewer);
    let media_user_id = input.media_user_id;
    db.write(move |c| {
        let tx = c.transaction()?;
        check_media_user(&tx, media_user_id)?;
        let id = rows::insert(
            &tx,
            &NewAccount {
                username: &username,
                role: Some(role),
                password_hash: hash.as_deref(),
                media_user_id,
                ..NewAccount::default()
            },
        )?;
        audit(
            &tx,
            &actor,
            "account.create",
            Some(&format!("account:{id}")),
            Some(json!({"username": username, "role": role, "media_user_id": media_user_id, "password": hash.is_some()})),
        )?;
        tx.commit()?;
        Ok(id)
    })
    .await
}

fn check_media_user(conn: &Connection, media_user_id: Option<i64>) -> AppResult<()> {
    match media_user_id {
        Some(id) if !rows::media_user_exists(conn, id)? => {
            Err(AppError::validation("media_user_id", "That media user does not exist."))
        }
        _ => Ok(()),
    }
}

fn existing(conn: &Connection, id: i64) -> AppResult<Account> {
    rows::by_id(conn, id)?.ok_or_else(|| AppError::not_found(format!("account {id}")))
}

/// Refuses a change that would leave no enabled admin.
fn keep_an_admin(conn: &Connection, account: &Account) -> AppResult<()> {
    if account.role == Role::Admin && !account.disabled && rows::count_admins(conn)? <= 1 {
        return Err(AppError::Conflict(format!(
            "{} is the last admin. Make another account an admin first.",
            account.username
        )));
    }
    Ok(())
}

/// Changes the role and the linked media user.
pub async fn update(
    db: &Db,
    actor: Actor,
    id: i64,
    role: Role,
    media_user_id: Option<i64>,
) -> AppResult<()> {
    db.write(move |c| {
        let tx = c.transaction()?;
        let account = existing(&tx, id)?;
        check_media_user(&tx, media_user_id)?;
        if account.role != role {
            if role == Role::Viewer {
                keep_an_admin(&tx, &account)?;
            }
            rows::set_role(&tx, id, role)?;
        }
        if account.media_user_id != media_user_id {
            rows::set_media_user(&tx, id, media_user_id)?;
        }
        if account.role != role || account.media_user_id != media_user_id {
            audit(
                &tx,
                &actor,
                "account.update",
                Some(&format!("account:{id}")),
                Some(json!({
                    "username": account.username,
                    "role": {"from": account.role, "to": role},
                    "media_user_id": {"from": account.media_user_id, "to": media_user_id},
                })),
            )?;
        }
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Disables (ending its sessions) or enables an account. Nobody disables themselves.
pub async fn set_disabled(
    db: &Db,
    actor: Actor,
    by: i64,
    id: i64,
    disabled: bool,
) -> AppResult<()> {
    if disabled && by == id {
        return Err(AppError::Conflict("You cannot disable your own account.".to_owned()));
    }
    db.write(move |c| {
        let tx = c.transaction()?;
        let account = existing(&tx, id)?;
        if account.disabled == disabled {
            return Ok(());
        }
        if disabled {
            keep_an_admin(&tx, &account)?;
            sessions::delete_for_account(&tx, id)?;
        }
        rows::set_disabled(&tx, id, disabled)?;
        let action = if disabled { "account.disable" } else { "account.enable" };
        audit(
            &tx,
            &actor,
            action,
            Some(&format!("account:{id}")),
            Some(json!({"username": account.username})),
        )?;
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Deletes an account and its sessions. Nobody deletes themselves.
pub async fn delete(db: &Db, actor: Actor, by: i64, id: i64) -> AppResult<String> {
    if by == id {
        return Err(AppError::Conflict("You cannot delete your own account.".to_owned()));
    }
    db.write(move |c| {
        let tx = c.transaction()?;
        let account = existing(&tx, id)?;
        keep_an_admin(&tx, &account)?;
        rows::delete(&tx, id)?;
        audit(
            &tx,
            &actor,
            "account.delete",
            Some(&format!("account:{id}")),
            Some(json!({"username": account.username})),
        )?;
        tx.commit()?;
        Ok(account.username)
    })
    .await
}

/// An admin sets a new password for an account and ends its sessions.
pub async fn reset_password(
    db: &Db,
    auth: &Auth,
    actor: Actor,
    id: i64,
    new: &str,
) -> AppResult<()> {
    let account = db.read(move |c| existing(c, id)).await?;
    password::validate("password", new, &account.username)?;
    let hash = auth.hashing.hash(new).await?;
    db.write(move |c| {
        let tx = c.transaction()?;
        rows::set_password(&tx, id, Some(&hash))?;
        sessions::delete_for_account(&tx, id)?;
        audit(
            &tx,
            &actor,
            "account.password_reset",
            Some(&format!("account:{id}")),
            Some(json!({"username": account.username})),
        )?;
        tx.commit()?;
        Ok(())
    })
    .await
}

/// A user changes their own password (proving the current one, if they have one) and ends
/// their other sessions.
pub async fn change_own_password(
    db: &Db,
    auth: &Auth,
    actor: Actor,
    user: &AuthUser,
    session_id: i64,
    current: &str,
    new: &str,
    confirm: &str,
) -> AppResult<()> {
    let id = user.id;
    let account = db.read(move |c| existing(c, id)).await?;
    if account.password_hash.is_some() {
        // The current password is a guess like a sign-in's: limited the same way, against
        // the same budget of the account, so a stolen session cannot try faster.
        let (account_key, ip_key) = attempt_keys(&account.username, actor.ip.as_deref());
        let attempt = reserve_attempt(auth, &account_key, ip_key.as_deref())?;
        if !auth.hashing.verify(current, account.password_hash.clone()).await? {
            attempt.failed();
            let username = account.username.clone();
            db.write(move |c| {
                audit(
                    c,
                    &actor,
                    "account.password_change_failed",
                    Some(&format!("account:{id}")),
                    Some(json!({"username": username, "reason": "wrong current password"})),
                )
            })
            .await?;
            return Err(AppError::validation("current", "This is not your current password."));
        }
        auth.limiter.succeeded(attempt);
        auth.limiter.clear(&account_key);
    }
    password::validate("password", new, &account.username)?;
    if new != confirm {
        return Err(AppError::validation("confirm", "The two passwords differ."));
    }
    let hash = auth.hashing.hash(new).await?;
    db.write(move |c| {
        let tx = c.transaction()?;
        rows::set_password(&tx, id, Some(&hash))?;
        sessions::delete_others(&tx, id, session_id)?;
        audit(&tx, &actor, "account.password_change", Some(&format!("account:{id}")), None)?;
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Ends every session of an account ("sign out everywhere").
pub async fn sign_out_everywhere(db: &Db, actor: Actor, account_id: i64) -> AppResult<usize> {
    db.write(move |c| {
        let tx = c.transaction()?;
        let n = sessions::delete_for_account(&tx, account_id)?;
        audit(
            &tx,
            &actor,
            "sessions.revoke_all",
            Some(&format!("account:{account_id}")),
            Some(json!({"sessions": n})),
        )?;
        tx.commit()?;
        Ok(n)
    })
    .await
}
