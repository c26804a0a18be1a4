//! Backtest: replays a rule over a period of history and says which violations it would
//! have raised, before it is enabled. Pure: the plays come in, the hits go out.
//!
//! Each play is judged as the live engine judged it when it was confirmed (its start plus
//! the confirmation window): the user's other plays that were confirmed and not yet over
//! then are its live sessions, the plays that had ended are its history. Households and
//! trust are today's; quality changes during a play are judged on its last known quality.

use std::collections::HashMap;

use super::eval::{Context, PlayFacts, UserFacts, Verdict, evaluate};
use super::model::Rule;
use crate::poller::tracker::Ms;

/// A violation the rule would have raised.
#[derive(Debug, Clone)]
pub struct Hit {
    pub play_id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub title: String,
    /// When it would have been raised.
    pub at: Ms,
    pub summary: String,
    pub verdict: Verdict,
}

/// Replays `rule` over the plays that started in `[from, to)`. `plays` holds them and the
/// earlier ones the rule looks back on, oldest first; `clock` gives the local hour and
/// weekday (Monday 0) of a moment.
pub fn replay(
    rule: &Rule,
    plays: &[PlayFacts],
    users: &HashMap<i64, UserFacts>,
    person_of: &HashMap<i64, i64>,
    from: Ms,
    to: Ms,
    confirm_ms: Ms,
    clock: &dyn Fn(Ms) -> (u8, u8),
) -> Vec<Hit> {
    // The plays of a person's accounts are one user's (persons as negative keys).
    let key = |user_id: i64| person_of.get(&user_id).map_or(user_id, |person| -person);
    let mut by_user: HashMap<i64, Vec<&PlayFacts>> = HashMap::new();
    for p in plays {
        by_user.entry(key(p.user_id)).or_default().push(p);
    }
    let lookback = rule.lookback_ms();
    let mut hits = Vec::new();
    for p in plays.iter().filter(|p| p.started_at >= from && p.started_at < to) {
        if !rule.applies_to(Some(p.server_id), p.user_id) {
            continue;
        }
        let Some(user) = users.get(&p.user_id) else { continue };
        let t = p.started_at + confirm_ms;
        let mine = &by_user[&key(p.user_id)];
        let live: Vec<PlayFacts> = mine
            .iter()
            .filter(|q| {
                q.play_id != p.play_id
                    && q.started_at + confirm_ms <= t
                    && q.stopped_at.is_none_or(|end| end >= t)
            })
            .map(|q| PlayFacts { stopped_at: None, ..(*q).clone() })
            .collect();
        let mut history: Vec<PlayFacts> = mine
            .iter()
            .filter(|q| {
                q.play_id != p.play_id
                    && q.stopped_at.is_some_and(|end| end < t)
                    && q.started_at >= t - lookback
            })
            .map(|q| (*q).clone())
            .collect();
        history.sort_by_key(|q| std::cmp::Reverse((q.started_at, q.play_id)));
        let session = PlayFacts { stopped_at: None, ..p.clone() };
        let (hour, weekday) = clock(t);
        let ctx = Context::new(t, hour, weekday, Some(&session), user, &live, &history);
        let verdict = evaluate(rule, &ctx);
        if verdict.matched {
            hits.push(Hit {
                play_id: p.play_id,
                user_id: p.user_id,
                user_name: user.name.clone(),
                title: p.title.clone(),
                at: t,
                summary: verdict.summary(),
                verdict,
            });
        }
    }
    hits
}
