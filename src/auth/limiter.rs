//! Login rate limiting: password attempts per account and per client address, in a sliding
//! window. Kept in memory: a restart forgets them, which costs an attacker a restart per
//! window and keeps failed guesses from writing to the database.
//!
//! An attempt is counted *before* its password is checked ([`Limiter::reserve`]), in one step
//! under one lock, and only a success gives it back. Checking first and counting the failure
//! after the slow hash would let a burst of parallel guesses all pass the check before any of
//! them is counted.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window attempts are counted in.
pub const WINDOW: Duration = Duration::from_mins(15);
/// Failed (or unfinished) attempts per account within the window before its sign-in pauses.
pub const PER_ACCOUNT: usize = 10;
/// Failed (or unfinished) attempts per client address within the window before its
/// sign-ins pause.
pub const PER_IP: usize = 30;
/// Above this many tracked keys, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 10_000;

/// Counts attempts per key (`account:alice`, `ip:192.0.2.1`).
#[derive(Default)]
pub struct Limiter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per key, the attempts in the window: when, and which reservation made it.
    attempts: HashMap<String, VecDeque<(Instant, u64)>>,
    next_id: u64,
}

/// An attempt counted against some keys. It keeps counting (as a failure) unless
/// [`Limiter::succeeded`] gives it back, so an attempt whose outcome is lost (an error, a
/// dropped request) still counts.
#[derive(Debug)]
#[must_use = "an attempt counts as failed unless `Limiter::succeeded` gives it back"]
pub struct Reservation {
    id: u64,
    keys: Vec<String>,
}

impl Reservation {
    /// The attempt failed: it keeps counting until it leaves the window.
    pub fn failed(self) {}
}

impl Limiter {
    /// Counts one attempt against every `(key, limit)`, all or none: `Err(wait)` when a key
    /// already has `limit` attempts in the window (then nothing is counted).
    pub fn reserve(&self, keys: &[(&str, usize)]) -> Result<Reservation, Duration> {
        self.reserve_at(keys, Instant::now())
    }

    pub fn reserve_at(
        &self,
        keys: &[(&str, usize)],
        now: Instant,
    ) -> Result<Reservation, Duration> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.attempts.len() > SWEEP_ABOVE {
            state.attempts.retain(|_, times| {
                times.back().is_some_and(|(t, _)| now.duration_since(*t) < WINDOW)
            });
        }
        let mut wait = None;
        for (key, limit) in keys {
            let Some(times) = state.attempts.get_mut(*key) else { continue };
            while times.front().is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW) {
                times.pop_front();
            }
            if times.len() >= *limit {
                // Free again when enough of the oldest attempts leave the window.
                let (oldest_relevant, _) = times[times.len() - limit];
                let left = WINDOW.saturating_sub(now.duration_since(oldest_relevant));
                wait = Some(wait.unwrap_or(Duration::ZERO).max(left.max(Duration::from_secs(1))));
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        state.next_id += 1;
        let id = state.next_id;
        for (key, _) in keys {
            let times = state.attempts.entry((*key).to_owned()).or_default();
            times.push_back((now, id));
            // Only the last `PER_IP` entries can matter.
            while times.len() > PER_IP.max(PER_ACCOUNT) {
                times.pop_front();
            }
        }
        Ok(Reservation { id, keys: keys.iter().map(|(k, _)| (*k).to_owned()).collect() })
    }

    /// The attempt succeeded: it no longer counts against any of its keys.
    pub fn succeeded(&self, reservation: Reservation) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in &reservation.keys {
            if let Some(times) = state.attempts.get_mut(key) {
                times.retain(|(_, id)| *id != reservation.id);
                if times.is_empty() {
                    state.attempts.remove(key);
                }
            }
        }
    }

    /// Forgets every attempt counted against `key` (after the account proved its password).
    pub fn clear(&self, key: &str) {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).attempts.remove(key);
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
    fn blocks_at_the_limit_and_frees_as_attempts_age() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            let at = t0 + Duration::from_secs(i);
            assert!(limiter.reserve_at(&[("k", 3)], at).is_ok(), "attempt {i}");
        }
        let wait = limiter.reserve_at(&[("k", 3)], t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, WINDOW.checked_sub(Duration::from_secs(10)).unwrap());
        assert!(limiter.reserve_at(&[("other", 3)], t0).is_ok(), "keys are separate");
        // The first attempt leaves the window: one more attempt is allowed.
        assert!(limiter.reserve_at(&[("k", 3)], t0 + WINDOW).is_ok());
        limiter.clear("k");
        assert!(limiter.reserve_at(&[("k", 3)], t0 + WINDOW).is_ok());
    }

    #[test]
    fn an_attempt_counts_from_its_reservation_until_it_succeeds() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        // Two attempts in flight at once use up a limit of two: a third waits, although
        // neither has failed yet.
        let a = limiter.reserve_at(&[("account:a", 2), ("ip:1", 5)], t0).unwrap();
        let _b = limiter.reserve_at(&[("account:a", 2), ("ip:1", 5)], t0).unwrap();
        assert!(limiter.reserve_at(&[("account:a", 2), ("ip:1", 5)], t0).is_err());
        // A refused attempt counts against no key: the address still has three left.
        for _ in 0..3 {
            let _ = limiter.reserve_at(&[("ip:1", 5)], t0).unwrap();
        }
        assert!(limiter.reserve_at(&[("ip:1", 5)], t0).is_err());
        // A success gives its own attempt back, and only its own.
        limiter.succeeded(a);
        let c = limiter.reserve_at(&[("account:a", 2)], t0).unwrap();
        assert!(limiter.reserve_at(&[("account:a", 2)], t0).is_err());
        limiter.succeeded(c);
        assert!(limiter.reserve_at(&[("ip:1", 5)], t0).is_ok(), "a's address attempt came back");
    }

    #[test]
    fn parallel_reservations_never_exceed_the_limit() {
        let limiter = std::sync::Arc::new(Limiter::default());
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let limiter = &limiter;
                    s.spawn(move || {
                        (0..25).filter(|_| limiter.reserve(&[("account:x", 10)]).is_ok()).count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 10);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(1)), "1 second");
        assert_eq!(human(Duration::from_secs(40)), "40 seconds");
        assert_eq!(human(Duration::from_secs(61)), "2 minutes");
        assert_eq!(human(Duration::from_mins(1)), "1 minute");
    }
}
