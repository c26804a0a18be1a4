//! Time as the whole application counts it: Unix milliseconds (UTC), the unit of every
//! timestamp column, every clock the poller and the rules engine inject, every API field
//! before it is formatted.

/// Unix milliseconds.
pub type Ms = i64;

/// The current time in Unix milliseconds.
pub fn now_ms() -> Ms {
    jiff::Timestamp::now().as_millisecond()
}
