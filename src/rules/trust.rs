//! Trust scores, 0 to 100 per media user: changed by rule actions and by admins, recovering
//! slowly while a user stays clean, reversed when a violation is dismissed. Pure: the
//! arithmetic lives here, the recording in `db::trust`.

use serde::{Deserialize, Serialize};

use crate::time::Ms;

/// A change to a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Adjust(i64),
    Set(i64),
    Reset,
}

impl Change {
    /// The score after the change, clamped to 0-100.
    pub fn apply(self, score: i64) -> i64 {
        match self {
            Change::Adjust(delta) => score.saturating_add(delta),
            Change::Set(value) => value,
            Change::Reset => 100,
        }
        .clamp(0, 100)
    }
}

/// Why a score changed (the timeline shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A rule's action.
    Rule,
    /// An admin set or adjusted it.
    Admin,
    /// Days without a violation.
    Recovery,
    /// The violation that lowered it was dismissed.
    Dismissed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::Admin => "admin",
            Reason::Recovery => "recovery",
            Reason::Dismissed => "dismissed",
        }
    }
}

/// How a score reads at a glance: the colour of its badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// 80 and above.
    Good,
    /// Between the two.
    Fair,
    /// Below the `trust_low` threshold of Settings → Rules.
    Low,
}

impl Band {
    /// Scores from here up are good.
    pub const GOOD_FROM: i64 = 80;

    /// The band of `score`, where `low_below` is the `trust_low` threshold (0: none).
    pub fn of(score: i64, low_below: u32) -> Self {
        if score < i64::from(low_below) {
            Band::Low
        } else if score >= Self::GOOD_FROM {
            Band::Good
        } else {
            Band::Fair
        }
    }

    /// `good`, `fair` or `low` (CSS classes and test hooks).
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Good => "good",
            Band::Fair => "fair",
            Band::Low => "low",
        }
    }
}

/// How trust recovers, set in Settings → Rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// Points regained per clean day (0 turns recovery off).
    pub points_per_day: u32,
    /// Days after the last violation before recovery starts.
    pub after_days: u32,
}

impl Default for Recovery {
    fn default() -> Self {
        Self { points_per_day: 1, after_days: 7 }
    }
}

const DAY: Ms = 86_400_000;

/// Points to give back now: `points_per_day` once a day, from `after_days` after the last
/// (not dismissed) violation on, never above 100.
pub fn recovery(
    score: i64,
    last_violation_at: Option<Ms>,
    last_recovery_at: Option<Ms>,
    now: Ms,
    settings: Recovery,
) -> i64 {
    if settings.points_per_day == 0 || score >= 100 {
        return 0;
    }
    if last_violation_at.is_some_and(|at| now - at < i64::from(settings.after_days) * DAY) {
        return 0;
    }
    let since = last_recovery_at
        .max(last_violation_at.map(|at| at + i64::from(settings.after_days) * DAY - DAY));
    if since.is_some_and(|at| now - at < DAY) {
        return 0;
    }
    i64::from(settings.points_per_day).min(100 - score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_clamp_to_the_scale() {
        assert_eq!(Change::Adjust(-20).apply(10), 0);
        assert_eq!(Change::Adjust(15).apply(95), 100);
        assert_eq!(Change::Set(140).apply(50), 100);
        assert_eq!(Change::Reset.apply(3), 100);
    }

    #[test]
    fn bands_follow_the_low_threshold() {
        let cases = [(100, 40, Band::Good), (80, 40, Band::Good), (79, 40, Band::Fair)];
        for (score, low, band) in cases {
            assert_eq!(Band::of(score, low), band, "{score} with {low}");
        }
        assert_eq!(Band::of(40, 40), Band::Fair, "the threshold itself is not low");
        assert_eq!(Band::of(39, 40), Band::Low);
        assert_eq!(Band::of(0, 0), Band::Fair, "0 turns the low band off");
        assert_eq!(Band::of(85, 90), Band::Low, "a threshold above 80 wins");
    }

    #[test]
    fn recovery_waits_for_a_clean_spell_then_gives_daily() {
        let s = Recovery { points_per_day: 2, after_days: 7 };
        let violation = 10 * DAY;
        assert_eq!(recovery(80, Some(violation), None, violation + 3 * DAY, s), 0, "too soon");
        assert_eq!(recovery(80, Some(violation), None, violation + 7 * DAY, s), 2);
        let last = violation + 7 * DAY;
        assert_eq!(recovery(82, Some(violation), Some(last), last + DAY / 2, s), 0, "once a day");
        assert_eq!(recovery(82, Some(violation), Some(last), last + DAY, s), 2);
        assert_eq!(recovery(99, None, None, last, s), 1, "never above 100");
        assert_eq!(recovery(100, None, None, last, s), 0);
        assert_eq!(
            recovery(50, None, None, last, Recovery { points_per_day: 0, after_days: 0 }),
            0
        );
    }
}
