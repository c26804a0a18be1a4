//! What the pages and the API do to rules, violations, trust and households: one place for
//! both, so they never disagree. Each change is one transaction.

use std::collections::HashMap;

use rusqlite::Connection;

use super::backtest::{self, Hit};
use super::eval::UserFacts;
use super::facts;
use super::model::{Rule, RuleDef};
use super::presets;
use super::trust::{Change, Reason};
use crate::db::rules::{Status, ViolationRow};
use crate::db::{self, Db, households};
use crate::error::{AppError, AppResult};
use crate::poller::tracker::Ms;

/// Most plays a backtest replays.
pub const BACKTEST_LIMIT: i64 = 100_000;

/// The country most plays come from (the geo restriction preset's first allowed one).
pub fn home_country(conn: &Connection) -> AppResult<String> {
    let country: Option<String> = conn
        .query_row(
            "SELECT geo_country FROM plays WHERE geo_country IS NOT NULL GROUP BY geo_country ORDER BY count(*) DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok();
    Ok(country.unwrap_or_else(|| "US".to_owned()))
}

/// Refuses notify actions naming channels that do not exist (a typo would otherwise
/// silently notify nobody).
fn check_channels(conn: &Connection, rule: &Rule) -> AppResult<()> {
    for (i, action) in rule.actions.iter().enumerate() {
        let super::model::Action::Notify { channels, .. } = action else { continue };
        for id in channels {
            let known: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM notifiers WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            if !known {
                return Err(AppError::validation(
                    format!("actions[{i}].channels"),
                    format!(
                        "there is no notification channel {id} (Settings → Notifications lists them)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks and stores a new rule.
pub async fn create(db: &Db, def: RuleDef, preset: Option<String>) -> AppResult<Rule> {
    let mut rule = def.compile()?;
    rule.preset = preset;
    db.write(move |conn| {
        check_channels(conn, &rule)?;
        let id = db::rules::insert(conn, &rule, db::now_ms())?;
        rule.id = id;
        Ok(rule)
    })
    .await
}

/// Creates the rule of a preset.
pub async fn create_preset(db: &Db, key: &str) -> AppResult<Rule> {
    let home = db.read(home_country).await?;
    let preset =
        presets::get(key, &home).ok_or_else(|| AppError::not_found(format!("preset {key}")))?;
    // A second copy gets a number, so one click always works.
    let names: Vec<String> =
        db.read(db::rules::list).await?.into_iter().map(|r| r.name.to_lowercase()).collect();
    let mut def = preset.def;
    let base = def.name.clone();
    let mut n = 2;
    while names.contains(&def.name.to_lowercase()) {
        def.name = format!("{base} {n}");
        n += 1;
    }
    create(db, def, Some(key.to_owned())).await
}

/// Replaces a rule with a checked definition.
pub async fn update(db: &Db, id: i64, def: RuleDef) -> AppResult<Rule> {
    let mut rule = def.compile()?;
    db.write(move |conn| {
        let existing =
            db::rules::get(conn, id)?.ok_or_else(|| AppError::not_found(format!("rule {id}")))?;
        check_channels(conn, &rule)?;
        rule.id = id;
        rule.preset = existing.preset;
        db::rules::update(conn, id, &rule, db::now_ms())?;
        Ok(rule)
    })
    .await
}

pub async fn get(db: &Db, id: i64) -> AppResult<Rule> {
    db.read(move |c| db::rules::get(c, id))
        .await?
        .ok_or_else(|| AppError::not_found(format!("rule {id}")))
}

/// Replays `rule` over `[from, to)`.
pub async fn backtest(
    db: &Db,
    rule: Rule,
    from: Ms,
    to: Ms,
    confirm_ms: Ms,
) -> AppResult<Vec<Hit>> {
    if to <= from {
        return Err(AppError::validation("to", "must be after from"));
    }
    if to - from > 366 * 86_400_000 {
        return Err(AppError::validation("to", "a backtest covers at most a year"));
    }
    let lookback = rule.lookback_ms();
    db.read(move |conn| {
        let mut plays = facts::period(conn, from - lookback, to, BACKTEST_LIMIT)?;
        let users: HashMap<i64, UserFacts> =
            facts::users(conn)?.into_iter().map(|u| (u.id, u)).collect();
        let mut networks: HashMap<i64, Vec<ipnet::IpNet>> = HashMap::new();
        for p in &mut plays {
            let nets = match networks.get(&p.user_id) {
                Some(n) => n,
                None => {
                    let n = households::confirmed(conn, p.user_id)?;
                    networks.entry(p.user_id).or_insert(n)
                }
            };
            facts::mark_households(std::slice::from_mut(p), nets);
        }
        let person_of: HashMap<i64, i64> = crate::db::persons::refs(conn)?
            .into_iter()
            .map(|(user, person)| (user, person.id))
            .collect();
        Ok(backtest::replay(
            &rule,
            &plays,
            &users,
            &person_of,
            from,
            to,
            confirm_ms,
            &super::engine::local_clock,
        ))
    })
    .await
}

/// Acknowledges or dismisses a violation; dismissing gives back the trust its rule took.
pub async fn resolve(
    db: &Db,
    id: i64,
    status: Status,
    actor: &str,
    note: Option<String>,
) -> AppResult<ViolationRow> {
    let actor = actor.to_owned();
    db.write(move |conn| {
        let tx = conn.transaction()?;
        let v = db::rules::get_violation(&tx, id)?
            .ok_or_else(|| AppError::not_found(format!("violation {id}")))?;
        let now = db::now_ms();
        let note = note.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 500) {
            return Err(AppError::validation("note", "at most 500 characters"));
        }
        // A dismissal gave the trust back; acknowledging or dismissing it again afterwards
        // would rewrite who decided what.
        if v.status == Status::Dismissed {
            return Err(AppError::Conflict(format!("violation {id} was already dismissed")));
        }
        db::rules::set_status(&tx, id, status, &actor, note, now)?;
        if status == Status::Dismissed {
            db::trust::reverse_violation(&tx, v.user_id, id, &actor, now)?;
        }
        let v = db::rules::get_violation(&tx, id)?
            .ok_or_else(|| AppError::not_found(format!("violation {id}")))?;
        tx.commit()?;
        Ok(v)
    })
    .await
}

/// An admin sets or adjusts a user's trust.
pub async fn set_trust(
    db: &Db,
    user_id: i64,
    change: Change,
    actor: &str,
    note: String,
) -> AppResult<i64> {
    if note.chars().count() > 500 {
        return Err(AppError::validation("note", "at most 500 characters"));
    }
    match change {
        Change::Set(v) if !(0..=100).contains(&v) => {
            return Err(AppError::validation("value", "from 0 to 100"));
        }
        Change::Adjust(d) if !(-100..=100).contains(&d) || d == 0 => {
            return Err(AppError::validation("adjust", "from -100 to 100, not 0"));
        }
        _ => {}
    }
    let actor = actor.to_owned();
    db.write(move |conn| {
        let tx = conn.transaction()?;
        let (_, score) = db::trust::apply(
            &tx,
            user_id,
            change,
            Reason::Admin,
            None,
            Some(&actor),
            note.trim(),
            db::now_ms(),
        )?;
        tx.commit()?;
        Ok(score)
    })
    .await
}

/// Adds a network to a user's households by hand (confirmed at once). `network` is an
/// address or a CIDR; nothing is saved when it is not one.
pub async fn add_household(
    db: &Db,
    user_id: i64,
    network: String,
    label: String,
) -> AppResult<households::Household> {
    db.write(move |conn| {
        let tx = conn.transaction()?;
        db::media_users::get(&tx, user_id)?
            .ok_or_else(|| AppError::not_found(format!("user {user_id}")))?;
        let id = households::add(&tx, user_id, &network, &label, db::now_ms())?;
        let home = households::get(&tx, id)?.ok_or_else(|| AppError::not_found("household"))?;
        tx.commit()?;
        Ok(home)
    })
    .await
}

/// The household `id`, when it is `owner`'s (any user's with `None`).
fn household_of(
    conn: &Connection,
    id: i64,
    owner: Option<i64>,
) -> AppResult<households::Household> {
    households::get(conn, id)?
        .filter(|h| owner.is_none_or(|o| o == h.user_id))
        .ok_or_else(|| AppError::not_found(format!("household {id}")))
}

/// Confirms a learned household network; `owner` limits it to one user's households.
pub async fn confirm_household(
    db: &Db,
    id: i64,
    owner: Option<i64>,
) -> AppResult<households::Household> {
    db.write(move |conn| {
        let tx = conn.transaction()?;
        household_of(&tx, id, owner)?;
        households::confirm(&tx, id, db::now_ms())?;
        let home = household_of(&tx, id, owner)?;
        tx.commit()?;
        Ok(home)
    })
    .await
}

/// Removes a household network (confirmed or proposed); returns what it was.
pub async fn remove_household(
    db: &Db,
    id: i64,
    owner: Option<i64>,
) -> AppResult<households::Household> {
    db.write(move |conn| {
        let tx = conn.transaction()?;
        let home = household_of(&tx, id, owner)?;
        households::delete(&tx, id)?;
        tx.commit()?;
        Ok(home)
    })
    .await
}
