//! Which sessions a terminate or message reaches.
//!
//! Notify actions publish a [`crate::notify::Event`] of kind `violation` with the rule's
//! channels (none: every channel that takes violations); the engine keeps the cooldown and
//! records on the violation what the outbox took.

use super::model::Target;
use crate::poller::live::LiveSession;

/// The play ids `target` picks among `sessions` (the user's countable live sessions),
/// oldest first. `triggering` is the session the rule matched on, if any.
pub fn targets(target: Target, triggering: Option<i64>, sessions: &[&LiveSession]) -> Vec<i64> {
    let mut sorted: Vec<&LiveSession> = sessions.to_vec();
    sorted.sort_by_key(|s| (s.started_at, s.play_id));
    let ids: Vec<i64> = sorted.iter().filter_map(|s| s.play_id).collect();
    match target {
        Target::Triggering => triggering.filter(|t| ids.contains(t)).into_iter().collect(),
        Target::Oldest => ids.first().copied().into_iter().collect(),
        Target::Newest => ids.last().copied().into_iter().collect(),
        Target::AllButOldest => ids.into_iter().skip(1).collect(),
        Target::All => ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::model::{ActiveSession, Item, PlaybackState, Player, StreamInfo, UserRef};
    use crate::time::Ms;

    fn live(id: i64, started_at: Ms) -> LiveSession {
        LiveSession {
            play_id: Some(id),
            server_id: 1,
            server_name: "s".into(),
            server_kind: crate::media::ServerKind::Plex,
            user_id: Some(1),
            pending: false,
            fading: false,
            session: ActiveSession {
                session_id: id.to_string(),
                control_id: None,
                user: UserRef { external_id: "1".into(), name: "u".into(), thumb: None },
                item: Item::default(),
                player: Player::default(),
                ip: None,
                server_says_local: false,
                state: PlaybackState::Playing,
                progress_ms: None,
                stream: StreamInfo::default(),
                can_control: true,
            },
            started_at,
            last_seen_at: started_at,
            paused_ms: 0,
            paused_since: None,
            is_local: false,
            geo: None,
        }
    }

    #[test]
    fn targets_pick_by_start_time() {
        let (a, b, c) = (live(7, 300), live(5, 100), live(9, 200));
        let all = [&a, &b, &c];
        assert_eq!(targets(Target::Triggering, Some(9), &all), [9]);
        assert_eq!(targets(Target::Triggering, Some(42), &all), Vec::<i64>::new(), "gone: nothing");
        assert_eq!(targets(Target::Oldest, Some(9), &all), [5]);
        assert_eq!(targets(Target::Newest, Some(9), &all), [7]);
        assert_eq!(targets(Target::AllButOldest, None, &all), [9, 7]);
        assert_eq!(targets(Target::All, None, &all), [5, 9, 7]);
    }
}
