//! Login rate limiting: failed sign-ins per account and per client address, in a sliding
//! window. Kept in memory: a restart forgets them, which costs an attacker a restart per
//! window and keeps failed guesses from writing to the database.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_mins(15);
/// Failures per account within the window before its sign-in pauses.
pub const PER_ACCOUNT: usize = 10;
/// Failures per client address within the window before its sign-ins pause.
pub const PER_IP: usize = 30;
/// Above this many tracked keys, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 10_000;

/// Counts failures per key (`account:alice`, `ip:192.0.2.1`).
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    /// `Err(wait)` while `key` has `limit` failures or more in the window.
    pub fn check(&self, key: &str, limit: usize) -> Result<(), Duration> {
        self.check_at(key, limit, Instant::now())
    }

    pub fn check_at(&self, key: &str, limit: usize, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(times) = map.get_mut(key) else { return Ok(()) };
        while times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            times.pop_front();
        }
        if times.len() < limit {
            return Ok(());
        }
        // Free again when enough of the oldest failures leave the window.
        let oldest_relevant = times[times.len() - limit];
        Err(WINDOW.saturating_sub(now.duration_since(oldest_relevant)).max(Duration::from_secs(1)))
    }

    pub fn fail(&self, key: &str) {
        self.fail_at(key, Instant::now());
    }

    pub fn fail_at(&self, key: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let times = map.entry(key.to_owned()).or_default();
        times.push_back(now);
        // Only the last `PER_IP` entries can matter.
        while times.len() > PER_IP.max(PER_ACCOUNT) {
            times.pop_front();
        }
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

/// "3 minutes", "1 minute", "40 seconds".
pub fn human(wait: Duration) -> String {
    let secs = wait.as_secs().max(1);
    if secs < 60 {
        return format!("{secs} second{}", if secs == 1 { "" } else { "s" });
    }
    let minutes = secs.div_ceil(60);
    format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_at_the_limit_and_frees_as_failures_age() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(limiter.check_at("k", 3, t0).is_ok(), "attempt {i}");
            limiter.fail_at("k", t0 + Duration::from_secs(i));
        }
        let wait = limiter.check_at("k", 3, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, WINDOW.checked_sub(Duration::from_secs(10)).unwrap());
        assert!(limiter.check_at("other", 3, t0).is_ok(), "keys are separate");
        // The first failure leaves the window: one more attempt is allowed.
        assert!(limiter.check_at("k", 3, t0 + WINDOW).is_ok());
        limiter.clear("k");
        assert!(limiter.check_at("k", 3, t0 + Duration::from_secs(11)).is_ok());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(1)), "1 second");
        assert_eq!(human(Duration::from_secs(40)), "40 seconds");
        assert_eq!(human(Duration::from_secs(61)), "2 minutes");
        assert_eq!(human(Duration::from_mins(1)), "1 minute");
    }
}
