//! The maintenance criteria, pure: an item's facts and the time in, whether it is a
//! candidate and why (in words) out. No I/O here; `evaluate` feeds it from SQLite.
//!
//! | type | applies to | params, defaults |
//! |---|---|---|
//! | `unwatched_movie` | movies | `days` 365: not watched for that long (never watched: added that long ago) |
//! | `unwatched_show` | shows | `days` 365: no episode watched for that long |
//! | `low_watch_ratio` | shows | `percent` 10, `days` 180: less than that share of episodes watched, added that long ago |
//! | `low_resolution` | movies, shows | `max_height` 720: the best version at or below it (width-aware) |
//! | `large_file` | movies, shows | `min_size_gb` 10: larger than that (a show: all its episodes) |
//! | `keep_latest_seasons` | shows | `keep` 3: every season but the newest ones (specials never) |

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::text::{bytes, days, days_between, number};
use crate::error::{AppError, AppResult};
use crate::media::library::{ItemKind, effective_height};
use crate::media::model::resolution_from_height;

/// One criterion with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Criterion {
    UnwatchedMovie { days: i64 },
    UnwatchedShow { days: i64 },
    LowWatchRatio { percent: i64, days: i64 },
    LowResolution { max_height: i64 },
    LargeFile { min_size_gb: f64 },
    KeepLatestSeasons { keep: i64 },
}

/// A parameter: its name, default and range (as typed, for the messages and the form).
struct Param {
    name: &'static str,
    default: f64,
    min: f64,
    max: f64,
    unit: &'static str,
    /// Whole numbers only.
    integer: bool,
}

const fn int(name: &'static str, default: f64, min: f64, max: f64, unit: &'static str) -> Param {
    Param { name, default, min, max, unit, integer: true }
}

/// Every criterion type, in the order the editor offers them.
pub const TYPES: [&str; 6] = [
    "unwatched_movie",
    "unwatched_show",
    "low_watch_ratio",
    "low_resolution",
    "large_file",
    "keep_latest_seasons",
];

const DAYS: &[Param] = &[int("days", 365.0, 1.0, 3650.0, "days")];
const RATIO: &[Param] =
    &[int("percent", 10.0, 1.0, 100.0, "%"), int("days", 180.0, 1.0, 3650.0, "days")];
const HEIGHT: &[Param] = &[int("max_height", 720.0, 240.0, 4320.0, "lines")];
const SIZE: &[Param] = &[Param {
    name: "min_size_gb",
    default: 10.0,
    min: 0.1,
    max: 100_000.0,
    unit: "GB",
    integer: false,
}];
const KEEP: &[Param] = &[int("keep", 3.0, 1.0, 100.0, "seasons")];

fn params_of(kind: &str) -> Option<&'static [Param]> {
    Some(match kind {
        "unwatched_movie" | "unwatched_show" => DAYS,
        "low_watch_ratio" => RATIO,
        "low_resolution" => HEIGHT,
        "large_file" => SIZE,
        "keep_latest_seasons" => KEEP,
        _ => return None,
    })
}

/// What a criterion is called on the page.
pub fn label(kind: &str) -> &'static str {
    match kind {
        "unwatched_movie" => "Movie not watched for",
        "unwatched_show" => "Show with no episode watched for",
        "low_watch_ratio" => "Show with few episodes watched",
        "low_resolution" => "Resolution at or below",
        "large_file" => "Larger than",
        "keep_latest_seasons" => "Keep only the newest seasons",
        _ => "Unknown criterion",
    }
}

/// The parameters of a criterion type for the editor: (name, default, min, max, unit, step).
pub fn form_params(kind: &str) -> Vec<(&'static str, f64, f64, f64, &'static str, f64)> {
    params_of(kind)
        .unwrap_or(&[])
        .iter()
        .map(|p| (p.name, p.default, p.min, p.max, p.unit, if p.integer { 1.0 } else { 0.1 }))
        .collect()
}

#[expect(clippy::cast_possible_truncation, reason = "whole numbers within a checked range")]
fn whole(v: f64) -> i64 {
    v.round() as i64
}

impl Criterion {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnwatchedMovie { .. } => "unwatched_movie",
            Self::UnwatchedShow { .. } => "unwatched_show",
            Self::LowWatchRatio { .. } => "low_watch_ratio",
            Self::LowResolution { .. } => "low_resolution",
            Self::LargeFile { .. } => "large_file",
            Self::KeepLatestSeasons { .. } => "keep_latest_seasons",
        }
    }

    /// The criterion as the API and the database write it: `{"type", "params"}`.
    pub fn to_json(&self) -> Value {
        let params = match self {
            Self::UnwatchedMovie { days } | Self::UnwatchedShow { days } => json!({"days": days}),
            Self::LowWatchRatio { percent, days } => json!({"percent": percent, "days": days}),
            Self::LowResolution { max_height } => json!({"max_height": max_height}),
            Self::LargeFile { min_size_gb } => json!({"min_size_gb": min_size_gb}),
            Self::KeepLatestSeasons { keep } => json!({"keep": keep}),
        };
        json!({"type": self.kind(), "params": params})
    }

    /// Reads one criterion; `at` names it in errors (`criteria[1]`). Missing parameters
    /// take their defaults; unknown ones, wrong types and numbers out of range are refused.
    pub fn parse(at: &str, value: &Value) -> AppResult<Self> {
        let object = value
            .as_object()
            .ok_or_else(|| AppError::validation(at, "must be an object {\"type\", \"params\"}"))?;
        if let Some(key) = object.keys().find(|k| !matches!(k.as_str(), "type" | "params")) {
            return Err(AppError::validation(format!("{at}.{key}"), "unknown field"));
        }
        let kind = object.get("type").and_then(Value::as_str).ok_or_else(|| {
            AppError::validation(format!("{at}.type"), format!("one of {}", TYPES.join(", ")))
        })?;
        let spec = params_of(kind).ok_or_else(|| {
            AppError::validation(
                format!("{at}.type"),
                format!("{kind:?} is not a criterion (one of {})", TYPES.join(", ")),
            )
        })?;
        let empty = Map::new();
        let params = match object.get("params") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => {
                return Err(AppError::validation(format!("{at}.params"), "must be an object"));
            }
        };
        if let Some(key) = params.keys().find(|k| !spec.iter().any(|p| p.name == k.as_str())) {
            let known: Vec<&str> = spec.iter().map(|p| p.name).collect();
            return Err(AppError::validation(
                format!("{at}.params.{key}"),
                format!("unknown parameter of {kind} (it takes {})", known.join(", ")),
            ));
        }
        let mut values = Vec::new();
        for p in spec {
            let field = format!("{at}.params.{}", p.name);
            let v = match params.get(p.name) {
                None | Some(Value::Null) => p.default,
                Some(v) => {
                    v.as_f64().ok_or_else(|| AppError::validation(&field, "must be a number"))?
                }
            };
            if !v.is_finite() || v < p.min || v > p.max {
                return Err(AppError::validation(
                    &field,
                    format!("must be between {} and {} {}", p.min, p.max, p.unit),
                ));
            }
            if p.integer && v.fract() != 0.0 {
                return Err(AppError::validation(&field, "must be a whole number"));
            }
            values.push(v);
        }
        Ok(match kind {
            "unwatched_movie" => Self::UnwatchedMovie { days: whole(values[0]) },
            "unwatched_show" => Self::UnwatchedShow { days: whole(values[0]) },
            "low_watch_ratio" => {
                Self::LowWatchRatio { percent: whole(values[0]), days: whole(values[1]) }
            }
            "low_resolution" => Self::LowResolution { max_height: whole(values[0]) },
            "large_file" => Self::LargeFile { min_size_gb: values[0] },
            _ => Self::KeepLatestSeasons { keep: whole(values[0]) },
        })
    }

    /// One line for lists: "Movie not watched for 365 days".
    pub fn describe(&self) -> String {
        match self {
            Self::UnwatchedMovie { days: d } => format!("movie not watched for {}", days(*d)),
            Self::UnwatchedShow { days: d } => {
                format!("show with no episode watched for {}", days(*d))
            }
            Self::LowWatchRatio { percent, days: d } => {
                format!(
                    "show with less than {percent} % of its episodes watched after {}",
                    days(*d)
                )
            }
            Self::LowResolution { max_height } => {
                format!("resolution at or below {max_height} lines")
            }
            Self::LargeFile { min_size_gb } => format!("larger than {min_size_gb} GB"),
            Self::KeepLatestSeasons { keep } => format!("keep only the newest {keep} seasons"),
        }
    }
}

/// Reads a rule's criteria (a JSON array), each error naming `criteria[i]...`.
pub fn parse_list(value: &Value) -> AppResult<Vec<Criterion>> {
    let items = value
        .as_array()
        .ok_or_else(|| AppError::validation("criteria", "must be a list of criteria"))?;
    if items.is_empty() {
        return Err(AppError::validation("criteria", "a rule needs at least one criterion"));
    }
    if items.len() > 20 {
        return Err(AppError::validation("criteria", "at most 20 criteria"));
    }
    let criteria = items
        .iter()
        .enumerate()
        .map(|(i, v)| Criterion::parse(&format!("criteria[{i}]"), v))
        .collect::<AppResult<Vec<_>>>()?;
    if criteria.iter().filter(|c| matches!(c, Criterion::KeepLatestSeasons { .. })).count() > 1 {
        return Err(AppError::validation("criteria", "keep_latest_seasons may appear once"));
    }
    Ok(criteria)
}

/// How a rule's criteria combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    All,
    Any,
}

impl Match {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Any => "any",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Self::All),
            "any" => Some(Self::Any),
            _ => None,
        }
    }
}

/// What the criteria look at, for one movie, show or season. Times in Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub id: i64,
    pub kind: Option<ItemKind>,
    pub added_at: Option<i64>,
    /// Merged from every source.
    pub last_watched_at: Option<i64>,
    pub size_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub episode_count: i64,
    pub watched_episode_count: i64,
    /// Seasons: their number.
    pub season_number: Option<i64>,
}

/// What the reasons are written for: the time, and the zone dates are shown in.
pub struct Clock {
    pub now: i64,
    pub tz: TimeZone,
}

impl Clock {
    fn date(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned(self.tz.clone()).strftime("%Y-%m-%d").to_string())
            .unwrap_or_default()
    }
}

/// A candidate a rule proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub item_id: i64,
    pub reasons: Vec<String>,
    /// What deleting it frees, bytes.
    pub size_bytes: i64,
}

/// Unwatched for `days` (never watched: added `days` ago); `what`: "watched" or "episode
/// watched".
fn unwatched(facts: &Facts, limit: i64, clock: &Clock, never: &str, since: &str) -> Option<String> {
    match facts.last_watched_at {
        Some(at) => {
            let age = days_between(at, clock.now);
            (at <= clock.now && age >= limit)
                .then(|| format!("{since} {}, {}", clock.date(at), days(age)))
        }
        None => {
            let added = facts.added_at?;
            let age = days_between(added, clock.now);
            (added <= clock.now && age >= limit)
                .then(|| format!("{never}, added {}, {} ago", clock.date(added), days(age)))
        }
    }
}

impl Criterion {
    /// The reason this criterion matches the movie or show `facts`, `None` when it does not
    /// (or does not apply to its kind).
    pub fn check(&self, facts: &Facts, clock: &Clock) -> Option<String> {
        let kind = facts.kind?;
        let movie_or_show = matches!(kind, ItemKind::Movie | ItemKind::Show);
        match self {
            Self::UnwatchedMovie { days } if kind == ItemKind::Movie => {
                unwatched(facts, *days, clock, "never watched", "not watched since")
            }
            Self::UnwatchedShow { days } if kind == ItemKind::Show => unwatched(
                facts,
                *days,
                clock,
                "no episode ever watched",
                "no episode watched since",
            ),
            Self::LowWatchRatio { percent, days: limit } if kind == ItemKind::Show => {
                let added = facts.added_at?;
                let age = days_between(added, clock.now);
                let total = facts.episode_count;
                let watched = facts.watched_episode_count.clamp(0, total.max(0));
                // watched / total < percent / 100, in integers.
                let low = total > 0 && watched * 100 < percent * total;
                (low && added <= clock.now && age >= *limit).then(|| {
                    format!(
                        "{} of {} episodes watched ({} %), added {}, {} ago",
                        number(watched),
                        number(total),
                        watched * 100 / total,
                        clock.date(added),
                        days(age)
                    )
                })
            }
            Self::LowResolution { max_height } if movie_or_show => {
                let height = effective_height(facts.width, facts.height)?;
                (height <= *max_height).then(|| {
                    let label =
                        resolution_from_height(height).unwrap_or_else(|| format!("{height} lines"));
                    match (facts.width, facts.height) {
                        (Some(w), Some(h)) => {
                            format!("{label} ({w} × {h}), at or below {max_height} lines")
                        }
                        _ => format!("{label}, at or below {max_height} lines"),
                    }
                })
            }
            Self::LargeFile { min_size_gb } if movie_or_show => {
                #[expect(clippy::cast_precision_loss, reason = "sizes compared in gigabytes")]
                let gb = facts.size_bytes as f64 / 1e9;
                (gb > *min_size_gb).then(|| {
                    let what = if kind == ItemKind::Show { "all episodes: " } else { "" };
                    format!("{what}{}, larger than {min_size_gb} GB", bytes(facts.size_bytes))
                })
            }
            _ => None,
        }
    }
}

/// What a rule proposes for one movie or show (`seasons`: a show's, any order): the item
/// itself, or, through `keep_latest_seasons`, its older seasons. Excluded items are left out
/// before this is called.
pub fn evaluate(
    how: Match,
    criteria: &[Criterion],
    item: &Facts,
    seasons: &[Facts],
    clock: &Clock,
) -> Vec<Proposal> {
    let keep = criteria.iter().find_map(|c| match c {
        Criterion::KeepLatestSeasons { keep } => Some(*keep),
        _ => None,
    });
    let item_criteria: Vec<&Criterion> =
        criteria.iter().filter(|c| !matches!(c, Criterion::KeepLatestSeasons { .. })).collect();
    let matched: Vec<String> = item_criteria.iter().filter_map(|c| c.check(item, clock)).collect();
    let whole_item = match how {
        // Every criterion, and the item is the candidate unless the rule trims seasons.
        Match::All => {
            keep.is_none() && !item_criteria.is_empty() && matched.len() == item_criteria.len()
        }
        Match::Any => !matched.is_empty(),
    };
    if whole_item {
        let mut reasons = matched;
        reasons.push(format!("frees {}", bytes(item.size_bytes)));
        return vec![Proposal { item_id: item.id, reasons, size_bytes: item.size_bytes }];
    }
    let Some(keep) = keep else { return Vec::new() };
    if item.kind != Some(ItemKind::Show) {
        return Vec::new();
    }
    // With "all", the other criteria must hold for the show before its seasons are trimmed.
    if how == Match::All && matched.len() != item_criteria.len() {
        return Vec::new();
    }
    let mut numbered: Vec<&Facts> =
        seasons.iter().filter(|s| s.season_number.is_some_and(|n| n > 0)).collect();
    numbered.sort_by_key(|s| std::cmp::Reverse(s.season_number));
    let total = numbered.len();
    let show_reasons = if how == Match::All { matched } else { Vec::new() };
    numbered
        .into_iter()
        .skip(usize::try_from(keep).unwrap_or(usize::MAX))
        .filter(|s| s.size_bytes > 0)
        .map(|s| {
            let mut reasons = show_reasons.clone();
            reasons.push(format!(
                "season {} of {total}; only the newest {} kept",
                s.season_number.unwrap_or(0),
                number(keep)
            ));
            reasons.push(format!("frees {}", bytes(s.size_bytes)));
            Proposal { item_id: s.id, reasons, size_bytes: s.size_bytes }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2025-04-18 12:00 UTC.
    const NOW: i64 = 1_744_977_600_000;

    fn clock() -> Clock {
        Clock { now: NOW, tz: TimeZone::UTC }
    }

    fn movie(id: i64) -> Facts {
        Facts {
            id,
            kind: Some(ItemKind::Movie),
            added_at: Some(NOW - 1000 * DAY),
            size_bytes: 14_200_000_000,
            width: Some(1920),
            height: Some(1080),
            ..Facts::default()
        }
    }

    fn show(id: i64, episodes: i64, watched: i64) -> Facts {
        Facts {
            kind: Some(ItemKind::Show),
            episode_count: episodes,
            watched_episode_count: watched,
            ..movie(id)
        }
    }

    fn season(id: i64, n: i64, size: i64) -> Facts {
        Facts {
            id,
            kind: Some(ItemKind::Season),
            season_number: Some(n),
            size_bytes: size,
            ..Facts::default()
        }
    }

    fn parse(v: Value) -> AppResult<Vec<Criterion>> {
        parse_list(&v)
    }

    #[test]
    fn defaults_and_errors_that_name_the_field() {
        let all =
            parse(json!(TYPES.iter().map(|t| json!({"type": t})).collect::<Vec<_>>())).unwrap();
        assert_eq!(
            all,
            [
                Criterion::UnwatchedMovie { days: 365 },
                Criterion::UnwatchedShow { days: 365 },
                Criterion::LowWatchRatio { percent: 10, days: 180 },
                Criterion::LowResolution { max_height: 720 },
                Criterion::LargeFile { min_size_gb: 10.0 },
                Criterion::KeepLatestSeasons { keep: 3 },
            ]
        );
        for c in &all {
            assert_eq!(Criterion::parse("x", &c.to_json()).unwrap(), *c, "round trip");
        }
        let cases = [
            (json!([]), "criteria", "at least one"),
            (json!({}), "criteria", "list"),
            (json!([5]), "criteria[0]", "object"),
            (json!([{"type": "old"}]), "criteria[0].type", "not a criterion"),
            (
                json!([{"type": "unwatched_movie", "params": {"days": 0}}]),
                "criteria[0].params.days",
                "between 1 and 3650 days",
            ),
            (
                json!([{"type": "large_file"}, {"type": "low_resolution", "params": {"max_height": 100}}]),
                "criteria[1].params.max_height",
                "between 240",
            ),
            (
                json!([{"type": "low_watch_ratio", "params": {"percent": 10.5}}]),
                "criteria[0].params.percent",
                "whole",
            ),
            (
                json!([{"type": "low_watch_ratio", "params": {"percent": "ten"}}]),
                "criteria[0].params.percent",
                "number",
            ),
            (
                json!([{"type": "unwatched_show", "params": {"weeks": 3}}]),
                "criteria[0].params.weeks",
                "unknown parameter",
            ),
            (json!([{"type": "unwatched_show", "extra": 1}]), "criteria[0].extra", "unknown field"),
            (
                json!([{"type": "keep_latest_seasons"}, {"type": "keep_latest_seasons"}]),
                "criteria",
                "once",
            ),
        ];
        for (value, field, words) in cases {
            match parse(value.clone()) {
                Err(AppError::Validation { field: f, message }) => {
                    assert_eq!(f, field, "{value}");
                    assert!(message.contains(words), "{value}: {message}");
                }
                other => panic!("{value}: {other:?}"),
            }
        }
        assert_eq!(
            parse(json!([{"type": "large_file", "params": {"min_size_gb": 2.5}}])).unwrap(),
            [Criterion::LargeFile { min_size_gb: 2.5 }]
        );
    }

    #[test]
    fn unwatched_movies_say_since_when_or_since_added() {
        let c = Criterion::UnwatchedMovie { days: 365 };
        let mut m = movie(1);
        m.last_watched_at = Some(NOW - 412 * DAY);
        assert_eq!(
            c.check(&m, &clock()).as_deref(),
            Some("not watched since 2024-03-02, 412 days")
        );
        m.last_watched_at = Some(NOW - 364 * DAY);
        assert_eq!(c.check(&m, &clock()), None, "watched within the year");
        m.last_watched_at = None;
        assert_eq!(
            c.check(&m, &clock()).as_deref(),
            Some("never watched, added 2022-07-23, 1,000 days ago")
        );
        m.added_at = Some(NOW - 10 * DAY);
        assert_eq!(c.check(&m, &clock()), None, "too new");
        m.added_at = None;
        assert_eq!(c.check(&m, &clock()), None, "an unknown age is never old");
        m.last_watched_at = Some(NOW + DAY);
        assert_eq!(c.check(&m, &clock()), None, "a clock ahead of us is not old");
        assert_eq!(c.check(&show(2, 5, 0), &clock()), None, "shows are not movies");
    }

    #[test]
    fn shows_by_their_episodes() {
        let mut s = show(1, 40, 2);
        let clock = clock();
        assert_eq!(
            Criterion::UnwatchedShow { days: 365 }.check(&s, &clock).as_deref(),
            Some("no episode ever watched, added 2022-07-23, 1,000 days ago")
        );
        let ratio = Criterion::LowWatchRatio { percent: 10, days: 180 };
        assert_eq!(
            ratio.check(&s, &clock).as_deref(),
            Some("2 of 40 episodes watched (5 %), added 2022-07-23, 1,000 days ago")
        );
        s.watched_episode_count = 4;
        assert_eq!(ratio.check(&s, &clock), None, "10 % is not less than 10 %");
        s.episode_count = 0;
        assert_eq!(ratio.check(&s, &clock), None, "no episodes: nothing to judge");
        assert_eq!(ratio.check(&movie(3), &clock), None);
    }

    #[test]
    fn resolution_is_width_aware_and_size_is_decimal() {
        let clock = clock();
        let low = Criterion::LowResolution { max_height: 720 };
        let mut m = movie(1);
        (m.width, m.height) = (Some(1280), Some(544));
        assert_eq!(
            low.check(&m, &clock).as_deref(),
            Some("720p (1280 × 544), at or below 720 lines")
        );
        (m.width, m.height) = (Some(1920), Some(800));
        assert_eq!(low.check(&m, &clock), None, "a scope 1080p film");
        (m.width, m.height) = (None, None);
        assert_eq!(low.check(&m, &clock), None, "unknown: not low");
        let large = Criterion::LargeFile { min_size_gb: 10.0 };
        assert_eq!(large.check(&movie(1), &clock).as_deref(), Some("14.2 GB, larger than 10 GB"));
        let mut small = movie(2);
        small.size_bytes = 10_000_000_000;
        assert_eq!(large.check(&small, &clock), None, "10 GB is not larger than 10 GB");
        assert_eq!(
            large.check(&show(3, 1, 0), &clock).as_deref(),
            Some("all episodes: 14.2 GB, larger than 10 GB")
        );
    }

    #[test]
    fn all_any_and_the_newest_seasons() {
        let clock = clock();
        let unwatched = Criterion::UnwatchedMovie { days: 365 };
        let large = Criterion::LargeFile { min_size_gb: 20.0 };
        let m = movie(7);
        assert!(
            evaluate(Match::All, &[unwatched.clone(), large.clone()], &m, &[], &clock).is_empty(),
            "not large"
        );
        let any = evaluate(Match::Any, &[unwatched.clone(), large], &m, &[], &clock);
        assert_eq!(
            any,
            [Proposal {
                item_id: 7,
                reasons: vec![
                    "never watched, added 2022-07-23, 1,000 days ago".into(),
                    "frees 14.2 GB".into()
                ],
                size_bytes: 14_200_000_000
            }]
        );

        let s = show(1, 10, 10);
        let seasons = [
            season(11, 1, 1_000_000_000),
            season(12, 2, 2_000_000_000),
            season(10, 0, 5),
            season(13, 3, 3),
            season(14, 4, 4),
            season(15, 5, 0),
        ];
        let keep = Criterion::KeepLatestSeasons { keep: 3 };
        let trimmed = evaluate(Match::All, std::slice::from_ref(&keep), &s, &seasons, &clock);
        let ids: Vec<i64> = trimmed.iter().map(|p| p.item_id).collect();
        assert_eq!(ids, [12, 11], "5, 4, 3 kept; specials never; empty seasons free nothing");
        assert_eq!(trimmed[0].reasons, ["season 2 of 5; only the newest 3 kept", "frees 2.0 GB"]);
        // With "all", the show must also match the other criteria; with "any", the show as
        // a whole wins when it matches.
        let stale = Criterion::UnwatchedShow { days: 30 };
        assert!(
            evaluate(Match::All, &[stale.clone(), keep.clone()], &s, &seasons, &clock)[0].reasons
                [0]
            .starts_with("no episode ever watched")
        );
        let mut watched = s.clone();
        watched.last_watched_at = Some(NOW - DAY);
        assert!(
            evaluate(Match::All, &[stale.clone(), keep.clone()], &watched, &seasons, &clock)
                .is_empty()
        );
        let whole = evaluate(Match::Any, &[stale.clone(), keep.clone()], &s, &seasons, &clock);
        assert_eq!(whole.iter().map(|p| p.item_id).collect::<Vec<_>>(), [1]);
        assert_eq!(
            evaluate(Match::Any, &[stale, keep.clone()], &watched, &seasons, &clock).len(),
            2
        );
        assert!(
            evaluate(Match::All, &[keep], &movie(3), &[], &clock).is_empty(),
            "movies have no seasons"
        );
    }
}
