//! When the library sync runs by itself: once at start, then every day at 03:00 in the
//! instance's time zone.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;

use super::Maintenance;
use crate::tasks::StopSignal;

/// The local hour of the daily sync.
pub const DAILY_AT: Time = Time::constant(3, 0, 0, 0);

/// The first moment after `now` when the wall clock in `tz` shows `at` (the next day if
/// it has passed today). On a day when `at` does not exist (a DST gap), the moment after
/// the gap.
pub fn next_run(now: Timestamp, tz: &TimeZone, at: Time) -> Timestamp {
    let local = now.to_zoned(tz.clone());
    let mut date = local.date();
    loop {
        if let Ok(candidate) = date.to_datetime(at).to_zoned(tz.clone())
            && candidate.timestamp() > now
        {
            return candidate.timestamp();
        }
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => return now + jiff::SignedDuration::from_hours(24),
        }
    }
}

/// Syncs at start, then daily at [`DAILY_AT`], until shutdown.
pub async fn run(maintenance: Arc<Maintenance>, mut stop: StopSignal) {
    if let Err(e) = maintenance.start_sync("schedule").await {
        tracing::warn!(error = %e, "cannot start the library sync");
    }
    loop {
        let now = Timestamp::now();
        let next = next_run(now, &TimeZone::system(), DAILY_AT);
        let wait = Duration::try_from(next.duration_since(now)).unwrap_or(Duration::from_hours(24));
        tracing::debug!(next = %next, "next library sync");
        if stop.sleep(wait).await {
            return;
        }
        if let Err(e) = maintenance.start_sync("schedule").await {
            tracing::warn!(error = %e, "cannot start the library sync");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn three_in_the_morning_local_time() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // 22:00 in Paris (UTC+1 in winter): 03:00 the next morning.
        assert_eq!(
            next_run(at("2025-01-10T21:00:00Z"), &paris, DAILY_AT),
            at("2025-01-11T02:00:00Z")
        );
        // 02:59 local: in a minute. 03:00 sharp: tomorrow.
        assert_eq!(
            next_run(at("2025-01-11T01:59:00Z"), &paris, DAILY_AT),
            at("2025-01-11T02:00:00Z")
        );
        assert_eq!(
            next_run(at("2025-01-11T02:00:00Z"), &paris, DAILY_AT),
            at("2025-01-12T02:00:00Z")
        );
        // Summer time: UTC+2.
        assert_eq!(
            next_run(at("2025-07-01T12:00:00Z"), &paris, DAILY_AT),
            at("2025-07-02T01:00:00Z")
        );
    }

    #[test]
    fn a_missing_hour_runs_after_the_gap() {
        // 2025-03-30 in Paris, clocks jump from 02:00 to 03:00: 03:00 exists. In New York
        // on 2025-03-09, 02:00 to 03:00: ask for 02:30, which does not exist.
        let ny = TimeZone::get("America/New_York").unwrap();
        let gap = Time::constant(2, 30, 0, 0);
        let next = next_run(at("2025-03-09T05:00:00Z"), &ny, gap);
        assert_eq!(next, at("2025-03-09T07:30:00Z"), "03:30 EDT, just after the gap");
        let utc = TimeZone::UTC;
        assert_eq!(
            next_run(at("2025-03-09T05:00:00Z"), &utc, DAILY_AT),
            at("2025-03-10T03:00:00Z")
        );
    }
}
