//! One person across servers: alice on Plex and alice on Jellyfin linked into one person,
//! suggested by matching names and emails (`suggest`), confirmed by an admin, undone by
//! unlinking. The rules engine looks through a person to all of its accounts
//! (`db::persons::accounts_of`), so two streams of linked accounts are one person's streams.
//!
//! A person exists only with two accounts or more: unlinking the second to last account
//! dissolves it.

pub mod suggest;

use rusqlite::Connection;

pub use self::suggest::Suggestion;
use crate::db::media_users;
use crate::db::persons::{self, Account, Person};
use crate::error::{AppError, AppResult};

/// Longest person name.
pub const MAX_NAME_CHARS: usize = 100;

/// A person with their accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonWithAccounts {
    pub person: Person,
    pub accounts: Vec<Account>,
}

/// What linking suggests now.
pub fn suggestions(conn: &Connection) -> AppResult<Vec<Suggestion>> {
    Ok(suggest::suggest(&persons::accounts(conn)?, &persons::dismissed(conn)?))
}

/// Every person, by name, with their accounts.
pub fn list(conn: &Connection) -> AppResult<Vec<PersonWithAccounts>> {
    persons::list(conn)?
        .into_iter()
        .map(|person| {
            Ok(PersonWithAccounts { accounts: persons::members(conn, person.id)?, person })
        })
        .collect()
}

pub fn get(conn: &Connection, id: i64) -> AppResult<PersonWithAccounts> {
    let person =
        persons::get(conn, id)?.ok_or_else(|| AppError::not_found(format!("person {id}")))?;
    Ok(PersonWithAccounts { accounts: persons::members(conn, id)?, person })
}

fn clean_name(name: Option<&str>) -> AppResult<Option<String>> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::validation("name", format!("at most {MAX_NAME_CHARS} characters")));
    }
    Ok(Some(name.to_owned()))
}

/// Links `user_ids` into one person and returns it. Accounts already in a person bring
/// it along: the persons merge into the oldest of them, which keeps its name unless `name`
/// gives one. A new person is named `name` or after the first account.
pub fn link(
    conn: &mut Connection,
    user_ids: &[i64],
    name: Option<&str>,
    now: i64,
) -> AppResult<PersonWithAccounts> {
    let mut ids = user_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return Err(AppError::validation("user_ids", "choose two accounts or more"));
    }
    let name = clean_name(name)?;
    let tx = conn.transaction()?;
    let mut users = Vec::with_capacity(ids.len());
    for &id in &ids {
        let user = media_users::get(&tx, id)?
            .ok_or_else(|| AppError::validation("user_ids", format!("there is no user {id}")))?;
        users.push(user);
    }
    let mut existing: Vec<i64> =
        users.iter().filter_map(|u| u.person.as_ref().map(|p| p.id)).collect();
    existing.sort_unstable();
    existing.dedup();
    let person_id = if let Some(&keep) = existing.first() {
        for &other in &existing[1..] {
            for member in persons::members(&tx, other)? {
                persons::set_person(&tx, member.id, Some(keep))?;
            }
            persons::delete(&tx, other)?;
        }
        if let Some(name) = &name {
            persons::rename(&tx, keep, name)?;
        }
        keep
    } else {
        persons::insert(&tx, name.as_deref().unwrap_or(&users[0].name), now)?
    };
    for &id in &ids {
        persons::set_person(&tx, id, Some(person_id))?;
    }
    let linked = get(&tx, person_id)?;
    tx.commit()?;
    Ok(linked)
}

/// Renames a person.
pub fn rename(conn: &mut Connection, id: i64, name: &str) -> AppResult<PersonWithAccounts> {
    let name = clean_name(Some(name))?
        .ok_or_else(|| AppError::validation("name", "give the person a name"))?;
    let tx = conn.transaction()?;
    get(&tx, id)?;
    persons::rename(&tx, id, &name)?;
    let renamed = get(&tx, id)?;
    tx.commit()?;
    Ok(renamed)
}

/// What unlinking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlinked {
    pub person_id: i64,
    /// One account was left, so the person is gone.
    pub dissolved: bool,
}

/// Takes one account out of its person (the undo of a link).
pub fn unlink(conn: &mut Connection, user_id: i64) -> AppResult<Unlinked> {
    let tx = conn.transaction()?;
    let user = media_users::get(&tx, user_id)?
        .ok_or_else(|| AppError::not_found(format!("user {user_id}")))?;
    let Some(person) = user.person else {
        return Err(AppError::Conflict(format!("{} is not linked to a person", user.name)));
    };
    persons::set_person(&tx, user_id, None)?;
    let dissolved = persons::members(&tx, person.id)?.len() < 2;
    if dissolved {
        persons::delete(&tx, person.id)?;
    }
    tx.commit()?;
    Ok(Unlinked { person_id: person.id, dissolved })
}

/// Dissolves a person: every account stands alone again. Returns what it was.
pub fn dissolve(conn: &mut Connection, id: i64) -> AppResult<PersonWithAccounts> {
    let tx = conn.transaction()?;
    let was = get(&tx, id)?;
    persons::delete(&tx, id)?;
    tx.commit()?;
    Ok(was)
}

/// Records that the accounts are different people: no suggestion pairs them again.
pub fn dismiss(conn: &mut Connection, user_ids: &[i64], now: i64) -> AppResult<()> {
    let mut ids = user_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return Err(AppError::validation("user_ids", "choose two accounts or more"));
    }
    let tx = conn.transaction()?;
    for &id in &ids {
        media_users::get(&tx, id)?
            .ok_or_else(|| AppError::validation("user_ids", format!("there is no user {id}")))?;
    }
    for (i, &a) in ids.iter().enumerate() {
        for &b in &ids[i + 1..] {
            persons::dismiss(&tx, a, b, now)?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::model::UserRef;

    fn setup() -> (tempfile::TempDir, Connection, Vec<i64>) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("p.db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        for (id, name) in [(1, "Plex"), (2, "Jellyfin"), (3, "Emby")] {
            conn.execute(
                "INSERT INTO servers (id, name, kind, url, token_sealed, enabled, verify_tls, created_at, updated_at) \
                 VALUES (?1, ?2, 'plex', 'http://x', 'v1.x', 1, 1, 0, 0)",
                rusqlite::params![id, name],
            )
            .unwrap();
        }
        let users = [(1, "alice"), (2, "Alice"), (3, "alice@example.com"), (1, "bob")]
            .iter()
            .enumerate()
            .map(|(i, (server, name))| {
                let user =
                    UserRef { external_id: i.to_string(), name: (*name).into(), thumb: None };
                media_users::upsert_from_session(&conn, *server, &user, 0).unwrap()
            })
            .collect();
        (dir, conn, users)
    }

    #[test]
    fn link_merge_unlink_and_dissolve() {
        let (_dir, mut conn, u) = setup();
        let found = suggestions(&conn).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].accounts.len(), 3, "the address's local part matches too");

        let p = link(&mut conn, &[u[0], u[1]], None, 5).unwrap();
        assert_eq!(p.person.name, "alice");
        assert_eq!(persons::accounts_of(&conn, u[1]).unwrap(), [u[0], u[1]]);
        assert_eq!(persons::accounts_of(&conn, u[3]).unwrap(), [u[3]], "bob stands alone");
        // The third alice is still suggested, to join the person.
        assert_eq!(suggestions(&conn).unwrap()[0].accounts.len(), 3);

        // A second person, then merging both: the oldest stays, renamed.
        let q = link(&mut conn, &[u[2], u[3]], Some("Mixed"), 6).unwrap();
        let merged = link(&mut conn, &[u[0], u[2]], Some("  Alice Smith "), 7).unwrap();
        assert_eq!(merged.person.id, p.person.id);
        assert_eq!(merged.person.name, "Alice Smith");
        assert_eq!(merged.accounts.len(), 4);
        assert!(persons::get(&conn, q.person.id).unwrap().is_none());

        let gone = unlink(&mut conn, u[3]).unwrap();
        assert!(!gone.dissolved);
        assert!(matches!(unlink(&mut conn, u[3]), Err(AppError::Conflict(_))));
        unlink(&mut conn, u[2]).unwrap();
        let last = unlink(&mut conn, u[1]).unwrap();
        assert!(last.dissolved, "one account is no person");
        assert!(media_users::get(&conn, u[0]).unwrap().unwrap().person.is_none());
        assert!(list(&conn).unwrap().is_empty());

        let p = link(&mut conn, &[u[0], u[1]], None, 8).unwrap();
        assert_eq!(dissolve(&mut conn, p.person.id).unwrap().accounts.len(), 2);
        assert_eq!(persons::accounts_of(&conn, u[0]).unwrap(), [u[0]]);
    }

    #[test]
    fn bad_links_are_refused_and_change_nothing() {
        let (_dir, mut conn, u) = setup();
        for (ids, name, field) in [
            (vec![u[0]], None, "user_ids"),
            (vec![u[0], u[0]], None, "user_ids"),
            (vec![u[0], 999], None, "user_ids"),
            (vec![u[0], u[1]], Some("x".repeat(101)), "name"),
        ] {
            match link(&mut conn, &ids, name.as_deref(), 1) {
                Err(AppError::Validation { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{ids:?}: {other:?}"),
            }
        }
        assert!(list(&conn).unwrap().is_empty());
        assert!(matches!(dissolve(&mut conn, 5), Err(AppError::NotFound(_))));
    }

    #[test]
    fn dismissed_suggestions_stay_away() {
        let (_dir, mut conn, u) = setup();
        dismiss(&mut conn, &[u[0], u[1], u[2]], 1).unwrap();
        assert!(suggestions(&conn).unwrap().is_empty());
        // Linking by hand still works.
        link(&mut conn, &[u[0], u[1]], None, 2).unwrap();
    }
}
