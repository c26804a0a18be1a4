//! How numbers, times and titles read, on the pages, in alerts and in exports. One place, so
//! everything agrees. Below the web layer: the rules evaluator and the poller's notices use it too.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A number of milliseconds (or kbit/s), however many references deep: templates bind
/// values by reference, Rust code passes them by value, and both call the same functions.
pub trait Num {
    fn get(&self) -> i64;
}

impl Num for i64 {
    fn get(&self) -> i64 {
        *self
    }
}

impl<T: Num + ?Sized> Num for &T {
    fn get(&self) -> i64 {
        (**self).get()
    }
}

/// "Show · S01E03 · Title", "Artist · Title" or "Title (2010)".
pub fn full_title(
    title: &str,
    grandparent: Option<&str>,
    season: Option<i64>,
    episode: Option<i64>,
    year: Option<i64>,
    media_type: &str,
) -> String {
    match (media_type, grandparent) {
        ("episode", Some(show)) => match (season, episode) {
            (Some(s), Some(e)) => format!("{show} · S{s:02}E{e:02} · {title}"),
            _ => format!("{show} · {title}"),
        },
        ("track", Some(artist)) => format!("{artist} · {title}"),
        _ => match year {
            Some(y) => format!("{title} ({y})"),
            None => title.to_owned(),
        },
    }
}

/// A moment in the server's time zone (`TZ`, which Unraid sets): "2026-11-21 18:02".
pub fn local_time(ms: impl Num) -> String {
    Timestamp::from_millisecond(ms.get())
        .map(|t| t.to_zoned(TimeZone::system()).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A day in the server's time zone: "2026-11-21" (what `<input type=date>` holds).
pub fn local_date(ms: impl Num) -> String {
    Timestamp::from_millisecond(ms.get())
        .map(|t| t.to_zoned(TimeZone::system()).strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// RFC 3339 in UTC, to the second: what the API and CSV export speak.
pub fn rfc3339(ms: impl Num) -> String {
    Timestamp::from_millisecond(ms.get()).map(|t| format!("{t:.0}")).unwrap_or_default()
}

/// A span for people: "45 s", "12 min", "1 h 05 min".
pub fn duration(ms: impl Num) -> String {
    let secs = ms.get().max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// A position in a video: "4:05" or "1:02:03".
pub fn clock(ms: impl Num) -> String {
    let secs = ms.get().max(0) / 1000;
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// "850 kbit/s" or "12.4 Mbit/s".
pub fn bandwidth(kbps: impl Num) -> String {
    // A server's "unknown" (-1) must not read as a negative rate.
    let kbps = kbps.get().max(0);
    if kbps < 1000 {
        format!("{kbps} kbit/s")
    } else {
        format!("{}.{} Mbit/s", kbps / 1000, (kbps % 1000) / 100)
    }
}

/// Whole percent of `part` in `total`, within 0..=100.
pub fn percent(part: impl Num, total: impl Num) -> i64 {
    let (part, total) = (part.get(), total.get());
    if total <= 0 { 0 } else { (part.clamp(0, total) * 100) / total }
}

/// `a=1&b=x%20y` from the pairs that have a value (blank ones are left out): the filters of
/// a list, carried by its paging links.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("static");
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
                query.append_pair(k, v);
            }
        }
    }
    url.query().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            full_title("Pilot", Some("Show"), Some(1), Some(3), None, "episode"),
            "Show · S01E03 · Pilot"
        );
        assert_eq!(
            full_title("Roses", Some("OutKast"), None, None, Some(2003), "track"),
            "OutKast · Roses"
        );
        assert_eq!(
            full_title("Inception", None, None, None, Some(2010), "movie"),
            "Inception (2010)"
        );
    }

    #[test]
    fn numbers_and_times() {
        assert_eq!(duration(45_000), "45 s");
        assert_eq!(duration(12 * 60_000 + 5_000), "12 min");
        assert_eq!(duration(3_900_000), "1 h 05 min");
        assert_eq!(clock(245_000), "4:05");
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(bandwidth(850), "850 kbit/s");
        assert_eq!(bandwidth(12_450), "12.4 Mbit/s");
        assert_eq!(bandwidth(-1), "0 kbit/s");
        assert_eq!(bandwidth(-12_450), "0 kbit/s");
        assert_eq!(percent(50, 200), 25);
        assert_eq!(percent(300, 200), 100);
        assert_eq!(percent(1, 0), 0);
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn query_strings_leave_blank_filters_out_and_encode_the_rest() {
        assert_eq!(
            query_string([
                ("user", Some("3")),
                ("q", Some(" a&b ")),
                ("to", Some("")),
                ("from", None)
            ]),
            "user=3&q=a%26b"
        );
    }
}
