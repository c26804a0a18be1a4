//! Local days, months and years of the instance's time zone, as day numbers, and the
//! cover of a period by the fewest day, month and year buckets.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};

/// A local day: days since 1970-01-01 in the instance's calendar.
pub type Day = i32;

/// Bucket levels of the rollups.
pub const LEVEL_DAY: i64 = 1;
pub const LEVEL_MONTH: i64 = 2;
pub const LEVEL_YEAR: i64 = 3;

const EPOCH: Date = Date::constant(1970, 1, 1);

/// Converts between Unix milliseconds and local days of one time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
}

impl Calendar {
    pub fn new(tz: TimeZone) -> Self {
        Self { tz }
    }

    /// The instance's calendar: the process time zone (`TZ`).
    pub fn system() -> Self {
        Self::new(TimeZone::system())
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The zone's name (`Europe/Berlin`), or its POSIX rule or offset when it has none.
    pub fn name(&self) -> String {
        self.tz.iana_name().map_or_else(
            || {
                let offset = self.tz.to_offset(Timestamp::now());
                if offset.seconds() == 0 { "UTC".to_owned() } else { format!("UTC{offset}") }
            },
            str::to_owned,
        )
    }

    fn zoned(&self, ms: i64) -> jiff::Zoned {
        Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned(self.tz.clone())
    }

    /// The local day of an instant.
    pub fn day_of(&self, ms: i64) -> Day {
        from_date(self.zoned(ms).date())
    }

    /// The local day and hour (0 to 23) of an instant.
    pub fn day_and_hour(&self, ms: i64) -> (Day, u8) {
        let z = self.zoned(ms);
        (from_date(z.date()), u8::try_from(z.hour()).unwrap_or(0))
    }

    /// The instant a local day begins (its first existing moment on days that skip
    /// midnight).
    pub fn start_ms(&self, day: Day) -> i64 {
        date(day)
            .to_zoned(self.tz.clone())
            .map_or(i64::from(day) * 86_400_000, |z| z.timestamp().as_millisecond())
    }
}

/// The day number of a date.
pub fn from_date(d: Date) -> Day {
    let days = d.duration_since(EPOCH).as_secs() / 86_400;
    Day::try_from(days).unwrap_or(0)
}

/// The date of a day number.
pub fn date(day: Day) -> Date {
    EPOCH.checked_add(i64::from(day).days()).unwrap_or(EPOCH)
}

/// `YYYY-MM-DD`.
pub fn iso(day: Day) -> String {
    date(day).to_string()
}

/// Monday 0 … Sunday 6 (1970-01-01 was a Thursday).
pub fn weekday(day: Day) -> usize {
    usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0)
}

pub fn month_start(day: Day) -> Day {
    from_date(date(day).first_of_month())
}

pub fn next_month(day: Day) -> Day {
    let d = date(day).first_of_month();
    from_date(d.checked_add(1.month()).unwrap_or(d))
}

pub fn year_start(day: Day) -> Day {
    from_date(date(day).first_of_year())
}

pub fn next_year(day: Day) -> Day {
    let d = date(day).first_of_year();
    from_date(d.checked_add(1.year()).unwrap_or(d))
}

/// One contiguous run of buckets of one level, first and last bucket start inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub level: i64,
    pub first: Day,
    pub last: Day,
}

impl Run {
    const EMPTY: Run = Run { level: LEVEL_DAY, first: 1, last: 0 };
}

/// The days `first..=last` as at most five runs: head days, head months, years, tail
/// months, tail days. Empty runs have `first > last`.
pub fn cover(first: Day, last: Day) -> [Run; 5] {
    let mut runs = [Run::EMPTY; 5];
    if first > last {
        return runs;
    }
    let m1 = if month_start(first) == first { first } else { next_month(first) };
    let end = month_start(last + 1); // first day not inside a whole month of the period
    if m1 >= end {
        runs[0] = Run { level: LEVEL_DAY, first, last };
        return runs;
    }
    runs[0] = Run { level: LEVEL_DAY, first, last: m1 - 1 };
    runs[4] = Run { level: LEVEL_DAY, first: end, last };
    let y1 = if year_start(m1) == m1 { m1 } else { next_year(m1) };
    let yend = year_start(end);
    if y1 >= yend {
        runs[1] = Run { level: LEVEL_MONTH, first: m1, last: end - 1 };
        return runs;
    }
    runs[1] = Run { level: LEVEL_MONTH, first: m1, last: y1 - 1 };
    runs[2] = Run { level: LEVEL_YEAR, first: y1, last: yend - 1 };
    runs[3] = Run { level: LEVEL_MONTH, first: yend, last: end - 1 };
    runs
}

/// The runs as the ten bounds the SQL takes (`db::stats::CoverBounds`).
pub fn bounds(runs: &[Run; 5]) -> [i64; 10] {
    let mut out = [0; 10];
    for (i, r) in runs.iter().enumerate() {
        out[2 * i] = i64::from(r.first);
        out[2 * i + 1] = i64::from(r.last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Day {
        from_date(s.parse().unwrap())
    }

    /// Every day of the period is in exactly one bucket of the cover.
    fn days_of(runs: &[Run; 5]) -> Vec<Day> {
        let mut out = Vec::new();
        for r in runs {
            let mut b = r.first;
            while b <= r.last {
                let next = match r.level {
                    LEVEL_DAY => b + 1,
                    LEVEL_MONTH => {
                        assert_eq!(month_start(b), b, "a month run starts months");
                        next_month(b)
                    }
                    _ => {
                        assert_eq!(year_start(b), b, "a year run starts years");
                        next_year(b)
                    }
                };
                out.extend(b..next);
                b = next;
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn covers_every_day_exactly_once() {
        let cases = [
            ("2024-03-05", "2024-03-05"),
            ("2024-03-05", "2024-03-31"),
            ("2024-03-01", "2024-03-31"),
            ("2024-02-15", "2024-04-02"),
            ("2023-11-20", "2026-02-03"),
            ("2023-01-01", "2023-12-31"),
            ("2022-12-31", "2024-01-01"),
            ("2020-01-01", "2025-06-30"),
        ];
        for (a, b) in cases {
            let runs = cover(d(a), d(b));
            assert_eq!(days_of(&runs), (d(a)..=d(b)).collect::<Vec<_>>(), "{a}..{b}");
        }
        let long = cover(d("2020-01-10"), d("2025-06-20"));
        assert_eq!(
            long[2],
            Run { level: LEVEL_YEAR, first: d("2021-01-01"), last: d("2025-01-01") - 1 }
        );
        assert!(days_of(&cover(5, 4)).is_empty());
    }

    #[test]
    fn days_weekdays_and_local_midnights() {
        assert_eq!(d("1970-01-01"), 0);
        assert_eq!(iso(d("2024-02-29")), "2024-02-29");
        assert_eq!(weekday(d("2024-06-03")), 0, "a Monday");
        assert_eq!(weekday(d("2024-06-09")), 6, "a Sunday");
        let berlin = Calendar::new(TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap());
        // 23:30 UTC on 31 March 2024 is 01:30 on 1 April in Berlin (summer time).
        let ms = "2024-03-31T23:30:00Z".parse::<Timestamp>().unwrap().as_millisecond();
        assert_eq!(berlin.day_and_hour(ms), (d("2024-04-01"), 1));
        assert_eq!(
            berlin.start_ms(d("2024-04-01")),
            "2024-03-31T22:00:00Z".parse::<Timestamp>().unwrap().as_millisecond()
        );
        // The day summer time starts has 23 hours.
        assert_eq!(
            berlin.start_ms(d("2024-04-01")) - berlin.start_ms(d("2024-03-31")),
            23 * 3_600_000
        );
    }
}
