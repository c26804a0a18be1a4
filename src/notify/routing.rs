//! Which channels an event goes to. Pure: the channels' choices in, channel ids out.
//! Cooldowns (which need the clock and the database) are applied by the publisher.

use std::time::Duration;

use super::NotifierId;
use super::event::{Event, EventKind};
use crate::rules::model::Severity;

/// What routing needs to know about one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub id: NotifierId,
    pub enabled: bool,
    pub events: Vec<EventKind>,
    pub min_severity: Severity,
    /// At most one message about the same user per this long on this channel.
    pub user_cooldown: Duration,
}

/// The channels that want `event`, in the order given.
///
/// An event naming its channels (a rule's notify action) goes to exactly those that are
/// enabled, whatever events and minimum severity they chose: the rule asked for them by
/// name. Any other event goes to every enabled channel that subscribes to its kind at or
/// above its minimum severity.
pub fn targets<'a>(event: &Event, channels: &'a [Route]) -> Vec<&'a Route> {
    channels
        .iter()
        .filter(|c| c.enabled)
        .filter(|c| match &event.channels {
            Some(named) => named.contains(&c.id),
            None => c.events.contains(&event.kind) && event.severity >= c.min_severity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: i64, events: &[EventKind], min: Severity) -> Route {
        Route {
            id: NotifierId(id),
            enabled: true,
            events: events.to_vec(),
            min_severity: min,
            user_cooldown: Duration::ZERO,
        }
    }

    #[test]
    fn table() {
        use EventKind::*;
        use Severity::*;
        let mut disabled = route(4, &[Violation], Low);
        disabled.enabled = false;
        let channels = [
            route(1, &[Violation, ServerDown], Low),
            route(2, &[Violation], High),
            route(3, &[StreamStarted], Low),
            disabled,
        ];
        let ids =
            |event: Event| targets(&event, &channels).iter().map(|c| c.id.0).collect::<Vec<_>>();
        let cases: Vec<(Event, Vec<i64>)> = vec![
            (Event::new(Violation, "").severity(Low), vec![1]),
            (Event::new(Violation, "").severity(Warning), vec![1]),
            (Event::new(Violation, "").severity(High), vec![1, 2]),
            (Event::new(ServerDown, ""), vec![1]),
            (Event::new(StreamStarted, ""), vec![3]),
            (Event::new(TrustLow, ""), vec![]),
            // Named channels: exactly those, enabled, whatever they subscribe to.
            (
                Event::new(Violation, "")
                    .severity(Low)
                    .channels(vec![NotifierId(2), NotifierId(3)]),
                vec![2, 3],
            ),
            (Event::new(Violation, "").channels(vec![NotifierId(4)]), vec![]),
            (Event::new(Violation, "").channels(vec![]), vec![]),
        ];
        for (event, expected) in cases {
            assert_eq!(ids(event.clone()), expected, "{event:?}");
        }
    }
}
