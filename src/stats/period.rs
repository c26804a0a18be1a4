//! Periods as the pages and the API name them: the last 7, 30, 90 or 365 days, all of
//! history, or two days.

use crate::error::{AppError, AppResult};
use crate::stats::calendar::{self, Day};

/// The periods the picker offers, in days (`all` and `custom` besides).
pub const PRESETS: [u16; 4] = [7, 30, 90, 365];
/// The period unless one is asked for.
pub const DEFAULT_DAYS: u16 = 30;
/// The longest custom period, in days (a century).
const MAX_DAYS: i32 = 36_600;

/// A period as asked: `period` (`7`, `30`, `90`, `365`, `all`) or `from`/`to` (local days,
/// `YYYY-MM-DD`, or RFC 3339 times taken to their local day).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asked<'a> {
    pub period: Option<&'a str>,
    pub from: Option<Day>,
    pub to: Option<Day>,
}

/// The local days `first..=last` of what was asked, `today` being the last day of a
/// preset period and `first_play` the first day of "all".
pub fn resolve(asked: &Asked<'_>, today: Day, first_play: Option<Day>) -> AppResult<(Day, Day)> {
    if asked.from.is_some() || asked.to.is_some() {
        let last = asked.to.unwrap_or(today);
        let first = asked.from.unwrap_or(last - i32::from(DEFAULT_DAYS) + 1);
        if first > last {
            return Err(AppError::validation("from", "the period starts after it ends"));
        }
        if last - first >= MAX_DAYS {
            return Err(AppError::validation("from", "a period is at most a century"));
        }
        return Ok((first, last));
    }
    match asked.period.map(str::trim).filter(|p| !p.is_empty() && *p != "custom") {
        None => Ok((today - i32::from(DEFAULT_DAYS) + 1, today)),
        Some("all") => Ok((first_play.unwrap_or(today).min(today), today)),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && i32::from(n) <= MAX_DAYS => Ok((today - i32::from(n) + 1, today)),
            _ => Err(AppError::validation("period", "7, 30, 90, 365, all, or from and to")),
        },
    }
}

/// A day field: `YYYY-MM-DD`, or an RFC 3339 time taken to its local day.
pub fn parse_day(field: &str, raw: &str, cal: &calendar::Calendar) -> AppResult<Day> {
    let raw = raw.trim();
    if let Ok(ts) = raw.parse::<jiff::Timestamp>() {
        return Ok(cal.day_of(ts.as_millisecond()));
    }
    raw.parse::<jiff::civil::Date>().map(calendar::from_date).map_err(|_| {
        AppError::validation(
            field,
            format!("{raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_custom_all_and_bad_input() {
        let today = 20_000;
        let r = |period: Option<&str>, from, to, first| {
            resolve(&Asked { period, from, to }, today, first)
        };
        assert_eq!(r(None, None, None, None).unwrap(), (today - 29, today));
        assert_eq!(r(Some("7"), None, None, None).unwrap(), (today - 6, today));
        assert_eq!(r(Some("all"), None, None, Some(19_000)).unwrap(), (19_000, today));
        assert_eq!(r(Some("all"), None, None, None).unwrap(), (today, today), "no plays yet");
        assert_eq!(r(Some("custom"), Some(19_990), Some(19_995), None).unwrap(), (19_990, 19_995));
        assert_eq!(r(None, None, Some(19_995), None).unwrap(), (19_966, 19_995));
        assert!(r(None, Some(19_996), Some(19_995), None).is_err());
        assert!(r(Some("week"), None, None, None).is_err());
        assert!(r(Some("0"), None, None, None).is_err());
        assert!(r(None, Some(0), Some(40_000), None).is_err());
        let cal = calendar::Calendar::new(jiff::tz::TimeZone::UTC);
        assert_eq!(parse_day("from", "1970-01-02", &cal).unwrap(), 1);
        assert_eq!(parse_day("from", "1970-01-02T23:00:00Z", &cal).unwrap(), 1);
        assert!(parse_day("from", "yesterday", &cal).is_err());
    }
}
