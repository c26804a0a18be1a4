//! The evaluator: plain data in (a session, the user, their other live sessions and their
//! history), a verdict and its evidence out. No clock, no database, no network: the live
//! engine, the backtest and the benchmark all call [`evaluate`] with data they gathered.
//!
//! False positives the peers' users reported are designed out here, and tested below:
//! - back-to-back episodes on one device are one stream (the tracker closes the first, and a
//!   device counts once);
//! - a play from the same address is never travel, whatever the GeoIP database says now;
//! - a quality switch is the same play (the tracker keeps it), never a second stream;
//! - moves shorter than `min_distance_km` (a phone between Wi-Fi and mobile data in one city)
//!   are not travel;
//! - local and household sessions are exempt from geographic conditions.

use std::cell::OnceCell;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::model::{Condition, Field, Kind, Op, Rule, Threshold};
use crate::geo::model::{Geo, haversine_km, round1, unmap};
use crate::media::model::{Decision, MediaType, resolution_rank};
use crate::time::Ms;

/// Most history rows one evaluation reads (window counts say when they reach past them).
pub const HISTORY_LIMIT: usize = 5_000;

const DAY_MS: f64 = 86_400_000.0;

/// One play as rules see it: live or finished.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlayFacts {
    pub play_id: i64,
    pub user_id: i64,
    pub server_id: i64,
    pub server_name: String,
    pub title: String,
    pub device_id: String,
    pub player: Option<String>,
    pub product: Option<String>,
    pub platform: Option<String>,
    pub ip: Option<IpAddr>,
    pub is_local: bool,
    /// The address is in one of the user's confirmed household networks.
    pub in_household: bool,
    pub geo: Option<Geo>,
    pub media_type: Option<MediaType>,
    pub library: Option<String>,
    pub library_id: Option<String>,
    pub source_resolution: Option<String>,
    pub stream_resolution: Option<String>,
    pub decision: Option<Decision>,
    pub source_bitrate_kbps: Option<i64>,
    pub started_at: Ms,
    /// `None` while live.
    pub stopped_at: Option<Ms>,
    pub paused: bool,
    /// Pause time so far, the current pause included.
    pub paused_ms: Ms,
    /// When the current pause began.
    pub paused_since: Option<Ms>,
}

impl PlayFacts {
    fn coords(&self) -> Option<(f64, f64)> {
        self.geo.as_ref().and_then(Geo::coords)
    }

    /// Local or from a household: where the user lives.
    fn at_home(&self) -> bool {
        self.is_local || self.in_household
    }

    fn place(&self) -> String {
        if self.is_local {
            return "local network".to_owned();
        }
        self.geo.as_ref().map(Geo::place).unwrap_or_default()
    }

    /// The session as related evidence.
    pub fn related(&self, role: &str, distance_km: Option<f64>) -> Related {
        Related {
            play_id: self.play_id,
            role: role.to_owned(),
            ip: self.ip.map(|ip| ip.to_string()),
            place: self.place(),
            lat: self.geo.as_ref().and_then(|g| g.lat),
            lon: self.geo.as_ref().and_then(|g| g.lon),
            device: self.player.clone().unwrap_or_else(|| self.device_id.clone()),
            started_at: self.started_at,
            stopped_at: self.stopped_at,
            distance_km: distance_km.map(round1),
        }
    }
}

/// The user the rule is about.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserFacts {
    pub id: i64,
    pub name: String,
    pub trust_score: i64,
    pub first_seen_at: Ms,
    /// The end of their latest finished play (or start of a live one).
    pub last_active_at: Option<Ms>,
}

/// Everything one evaluation reads. Built once per session; any number of rules share it.
pub struct Context<'a> {
    pub now: Ms,
    /// Hour of `now` in the server's time zone, 0-23.
    pub local_hour: u8,
    /// Day of `now` in the server's time zone, 0 = Monday.
    pub local_weekday: u8,
    /// The session the rules run for; `None` for per-user checks (inactivity).
    pub session: Option<&'a PlayFacts>,
    pub user: &'a UserFacts,
    /// The user's other countable live sessions (not `session`).
    pub live: &'a [PlayFacts],
    /// The user's earlier finished plays, newest first.
    pub history: &'a [PlayFacts],
    derived: Derived<'a>,
}

/// Facts several rules need, computed once per context.
#[derive(Default)]
struct Derived<'a> {
    devices: OnceCell<Vec<&'a str>>,
    /// Distinct (address, coordinates) of earlier plays away from home.
    places: OnceCell<Vec<(&'a PlayFacts, (f64, f64))>>,
}

impl<'a> Context<'a> {
    pub fn new(
        now: Ms,
        local_hour: u8,
        local_weekday: u8,
        session: Option<&'a PlayFacts>,
        user: &'a UserFacts,
        live: &'a [PlayFacts],
        history: &'a [PlayFacts],
    ) -> Self {
        Self {
            now,
            local_hour,
            local_weekday,
            session,
            user,
            live,
            history,
            derived: Derived::default(),
        }
    }

    fn known_devices(&self) -> &[&'a str] {
        self.derived.devices.get_or_init(|| {
            let mut devices: Vec<&str> =
                self.history.iter().map(|p| p.device_id.as_str()).collect();
            devices.sort_unstable();
            devices.dedup();
            devices
        })
    }

    fn known_places(&self) -> &[(&'a PlayFacts, (f64, f64))] {
        self.derived.places.get_or_init(|| {
            let mut places: Vec<(&PlayFacts, (f64, f64))> = Vec::new();
            for p in self.history {
                let Some(c) = p.coords() else { continue };
                if p.is_local || places.iter().any(|(q, qc)| q.ip == p.ip || *qc == c) {
                    continue;
                }
                places.push((p, c));
            }
            places
        })
    }
}

/// A value a condition saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Actual {
    Bool(bool),
    Number(f64),
    Text(String),
    /// Not known (no session, no GeoIP answer, exempt): the condition does not match.
    Unknown,
}

/// A session that explains a condition's value (the two ends of a travel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Related {
    pub play_id: i64,
    /// `current`, `previous`, `other`, `nearest known`.
    pub role: String,
    pub ip: Option<String>,
    pub place: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub device: String,
    /// Unix milliseconds.
    pub started_at: Ms,
    pub stopped_at: Option<Ms>,
    pub distance_km: Option<f64>,
}

/// One condition's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionEvidence {
    pub field: Field,
    pub op: Op,
    pub threshold: serde_json::Value,
    pub actual: Actual,
    pub matched: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related>,
    /// Why the value is what it is ("same address as the previous play").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A rule's result with its evidence, group by group (evaluation stops at the first group
/// that fails, since the rule cannot match after it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub matched: bool,
    pub groups: Vec<Vec<ConditionEvidence>>,
}

impl Verdict {
    /// The matched conditions, for one-line summaries.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .groups
            .iter()
            .flatten()
            .filter(|e| e.matched)
            .map(|e| {
                let actual = match &e.actual {
                    Actual::Bool(b) => b.to_string(),
                    Actual::Number(n) => format_number(*n),
                    Actual::Text(t) => t.clone(),
                    Actual::Unknown => "unknown".to_owned(),
                };
                format!(
                    "{} {actual} ({} {})",
                    e.field.label(),
                    e.op.symbol(),
                    threshold_text(&e.threshold)
                )
            })
            .collect();
        parts.join("; ")
    }

    /// Every related session, once, in order of appearance.
    pub fn related(&self) -> Vec<&Related> {
        let mut out: Vec<&Related> = Vec::new();
        for r in self.groups.iter().flatten().flat_map(|e| &e.related) {
            if !out.iter().any(|o| o.play_id == r.play_id) {
                out.push(r);
            }
        }
        out
    }
}

pub fn format_number(n: f64) -> String {
    if n.is_infinite() {
        "∞".to_owned()
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

pub fn threshold_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(threshold_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Evaluates `rule` in `ctx`. Scope (servers, exempt users) is the caller's business.
pub fn evaluate(rule: &Rule, ctx: &Context<'_>) -> Verdict {
    let mut groups = Vec::with_capacity(rule.groups.len());
    let mut matched = true;
    for group in &rule.groups {
        let evidence: Vec<ConditionEvidence> = group.iter().map(|c| condition(c, ctx)).collect();
        let any = evidence.iter().any(|e| e.matched);
        groups.push(evidence);
        if !any {
            matched = false;
            break;
        }
    }
    Verdict { matched, groups }
}

/// What computing a field yields: the value, related sessions (only kept on a match), a note.
struct Seen {
    actual: Actual,
    related: Vec<Related>,
    note: Option<String>,
}

impl Seen {
    fn value(actual: Actual) -> Self {
        Self { actual, related: Vec::new(), note: None }
    }

    fn unknown(note: &str) -> Self {
        Self { actual: Actual::Unknown, related: Vec::new(), note: Some(note.to_owned()) }
    }

    fn number(n: f64) -> Self {
        Self::value(Actual::Number(n))
    }

    fn text(s: Option<&str>) -> Self {
        s.map_or_else(|| Self::unknown("not known"), |s| Self::value(Actual::Text(s.to_owned())))
    }
}

fn condition(c: &Condition, ctx: &Context<'_>) -> ConditionEvidence {
    let seen = observe(c, ctx);
    let matched = compare(c, &seen.actual, ctx);
    ConditionEvidence {
        field: c.field,
        op: c.op,
        threshold: c.value.clone(),
        actual: seen.actual,
        matched,
        related: if matched { seen.related } else { Vec::new() },
        note: seen.note,
    }
}

fn compare(c: &Condition, actual: &Actual, ctx: &Context<'_>) -> bool {
    if c.field == Field::IpInCidr {
        return match (c.op, actual) {
            (Op::In, Actual::Bool(inside)) => *inside,
            (Op::NotIn, Actual::Bool(inside)) => !*inside,
            _ => false,
        };
    }
    match (actual, &c.threshold) {
        (Actual::Number(a), t) => compare_number(c.op, *a, t),
        (Actual::Bool(a), Threshold::Bool(t)) => match c.op {
            Op::Eq => a == t,
            Op::Neq => a != t,
            _ => false,
        },
        (Actual::Text(a), t) => match c.field {
            // User and server match by name or by id.
            Field::User => compare_text(c.op, a, t) || compare_id(c.op, ctx.user.id, t),
            Field::Server => {
                let id = ctx.session.map_or(0, |s| s.server_id);
                compare_text(c.op, a, t) || compare_id(c.op, id, t)
            }
            Field::Library => {
                let id = ctx.session.and_then(|s| s.library_id.as_deref()).unwrap_or_default();
                compare_text(c.op, a, t) || (!id.is_empty() && compare_text(c.op, id, t))
            }
            _ => compare_text(c.op, a, t),
        },
        (Actual::Unknown | Actual::Bool(_), _) => false,
    }
}

fn compare_number(op: Op, a: f64, t: &Threshold) -> bool {
    match (op, t) {
        (Op::Eq, Threshold::Number(t)) => (a - t).abs() < 1e-9,
        (Op::Neq, Threshold::Number(t)) => (a - t).abs() >= 1e-9,
        (Op::Gt, Threshold::Number(t)) => a > *t,
        (Op::Gte, Threshold::Number(t)) => a >= *t,
        (Op::Lt, Threshold::Number(t)) => a < *t,
        (Op::Lte, Threshold::Number(t)) => a <= *t,
        (Op::In, Threshold::Numbers(list)) => list.iter().any(|t| (a - t).abs() < 1e-9),
        (Op::NotIn, Threshold::Numbers(list)) => !list.iter().any(|t| (a - t).abs() < 1e-9),
        _ => false,
    }
}

fn compare_text(op: Op, a: &str, t: &Threshold) -> bool {
    let eq = |t: &str| a.eq_ignore_ascii_case(t) || (!a.is_ascii() && a.to_lowercase() == t);
    match (op, t) {
        (Op::Eq, Threshold::Text(t)) => eq(t),
        (Op::Neq, Threshold::Text(t)) => !eq(t),
        (Op::In, Threshold::Texts(list)) => list.iter().any(|t| eq(t)),
        (Op::NotIn, Threshold::Texts(list)) => !list.iter().any(|t| eq(t)),
        (Op::Contains, Threshold::Text(t)) => a.to_lowercase().contains(t.as_str()),
        (Op::NotContains, Threshold::Text(t)) => !a.to_lowercase().contains(t.as_str()),
        _ => false,
    }
}

/// For user and server: a negative operator holds only if neither name nor id matches, so
/// the name comparison (done first) already decides; ids only add positive matches.
fn compare_id(op: Op, id: i64, t: &Threshold) -> bool {
    let id = id.to_string();
    match (op, t) {
        (Op::Eq, Threshold::Text(t)) => *t == id,
        (Op::In, Threshold::Texts(list)) => list.contains(&id),
        _ => false,
    }
}

#[expect(clippy::cast_precision_loss, reason = "counts and minutes are small")]
fn observe(c: &Condition, ctx: &Context<'_>) -> Seen {
    let s = ctx.session;
    if c.field.is_geographic()
        && c.params.exempt_household
        && let Some(s) = s
    {
        if s.is_local {
            return Seen::unknown("exempt: on the local network");
        }
        if s.in_household {
            return Seen::unknown("exempt: from a household network");
        }
    }
    let Some(s) = s else {
        return match c.field {
            Field::InactiveDays => inactive_days(ctx),
            Field::TrustScore => Seen::number(ctx.user.trust_score as f64),
            Field::AccountAgeDays => {
                Seen::number(((ctx.now - ctx.user.first_seen_at) as f64 / DAY_MS).floor().max(0.0))
            }
            Field::User => Seen::value(Actual::Text(ctx.user.name.clone())),
            Field::HourOfDay => Seen::number(f64::from(ctx.local_hour)),
            Field::DayOfWeek => Seen::value(Actual::Text(
                super::model::WEEKDAYS[usize::from(ctx.local_weekday % 7)].to_owned(),
            )),
            _ => Seen::unknown("needs a session"),
        };
    };
    match c.field {
        Field::ConcurrentStreams => concurrent(c, s, ctx),
        Field::ActiveSessionDistanceKm => distance(c, s, ctx),
        Field::TravelSpeedKmh => travel(c, s, ctx),
        Field::UniqueIpsInWindow
        | Field::UniqueDevicesInWindow
        | Field::UniqueIspsInWindow
        | Field::UniqueCountriesInWindow => unique_in_window(c, s, ctx),
        Field::IsNewDevice => {
            let new = !ctx.known_devices().contains(&s.device_id.as_str());
            Seen {
                actual: Actual::Bool(new),
                related: vec![s.related("current", None)],
                note: ctx.history.is_empty().then(|| "the user's first play".to_owned()),
            }
        }
        Field::NewLocationDistanceKm => new_location(s, ctx),
        Field::CountrySharePct => country_share(c, s, ctx),
        Field::InactiveDays => inactive_days(ctx),
        Field::TrustScore => Seen::number(ctx.user.trust_score as f64),
        Field::AccountAgeDays => {
            Seen::number(((ctx.now - ctx.user.first_seen_at) as f64 / DAY_MS).floor().max(0.0))
        }
        Field::User => Seen::value(Actual::Text(ctx.user.name.clone())),
        Field::Server => Seen::value(Actual::Text(s.server_name.clone())),
        Field::MediaType => Seen::text(s.media_type.map(MediaType::as_str)),
        Field::Library => Seen::text(s.library.as_deref().or(s.library_id.as_deref())),
        Field::SourceResolution => resolution(s.source_resolution.as_deref()),
        Field::StreamResolution => {
            resolution(s.stream_resolution.as_deref().or(s.source_resolution.as_deref()))
        }
        Field::IsTranscoding => Seen::value(Actual::Bool(s.decision == Some(Decision::Transcode))),
        Field::IsTranscodeDowngrade => {
            let rank = |r: &Option<String>| r.as_deref().and_then(resolution_rank);
            let down = s.decision == Some(Decision::Transcode)
                && matches!((rank(&s.source_resolution), rank(&s.stream_resolution)), (Some(a), Some(b)) if b < a);
            Seen::value(Actual::Bool(down))
        }
        Field::SourceBitrateMbps => s.source_bitrate_kbps.map_or_else(
            || Seen::unknown("bitrate not reported"),
            |k| Seen::number(k as f64 / 1000.0),
        ),
        Field::DeviceType => Seen::value(Actual::Text(device_type(s).to_owned())),
        Field::Client => Seen::text(s.product.as_deref()),
        Field::Platform => Seen::text(s.platform.as_deref()),
        Field::IsLocalNetwork => Seen::value(Actual::Bool(s.is_local)),
        Field::InHousehold => Seen::value(Actual::Bool(s.in_household)),
        Field::Country => geo_text(s, |g| g.country.as_deref()),
        Field::City => geo_text(s, |g| g.city.as_deref()),
        Field::Isp => geo_text(s, |g| g.isp.as_deref()),
        Field::Asn => s
            .geo
            .as_ref()
            .and_then(|g| g.asn)
            .map_or_else(|| Seen::unknown("no ASN for this address"), |a| Seen::number(a as f64)),
        Field::IpInCidr => ip_in_cidr(c, s),
        Field::HourOfDay => Seen::number(f64::from(ctx.local_hour)),
        Field::DayOfWeek => Seen::value(Actual::Text(
            super::model::WEEKDAYS[usize::from(ctx.local_weekday % 7)].to_owned(),
        )),
        Field::CurrentPauseMinutes => {
            let ms =
                s.paused_since.filter(|_| s.paused).map_or(0, |since| (ctx.now - since).max(0));
            Seen::number((ms as f64 / 60_000.0).floor())
        }
        Field::TotalPauseMinutes => Seen::number((s.paused_ms as f64 / 60_000.0).floor()),
    }
}

fn geo_text(s: &PlayFacts, get: impl Fn(&Geo) -> Option<&str>) -> Seen {
    if s.is_local {
        return Seen::unknown("on the local network");
    }
    match s.geo.as_ref().and_then(get) {
        Some(v) => Seen::value(Actual::Text(v.to_owned())),
        None => Seen::unknown("no GeoIP answer for this address"),
    }
}

fn resolution(label: Option<&str>) -> Seen {
    match label.and_then(resolution_rank) {
        Some(rank) => Seen {
            actual: Actual::Number(f64::from(rank)),
            related: Vec::new(),
            note: label.map(str::to_owned),
        },
        None => Seen::unknown("resolution not reported"),
    }
}

fn ip_in_cidr(c: &Condition, s: &PlayFacts) -> Seen {
    let Some(ip) = s.ip.map(unmap) else { return Seen::unknown("no address") };
    let Threshold::Networks(nets) = &c.threshold else { return Seen::unknown("no networks") };
    let inside = nets.iter().any(|n| n.contains(&ip));
    // in / not_in compare the address against the list: report it as text, decided here.
    Seen { actual: Actual::Bool(inside), related: Vec::new(), note: Some(ip.to_string()) }
}

/// Mobile, tablet, TV, desktop, browser or unknown, from what the client calls itself.
pub fn device_type(s: &PlayFacts) -> &'static str {
    let text = format!(
        "{} {} {}",
        s.player.as_deref().unwrap_or_default(),
        s.product.as_deref().unwrap_or_default(),
        s.platform.as_deref().unwrap_or_default()
    )
    .to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&["ipad", "tablet", "kindle"]) {
        "tablet"
    } else if has(&[
        "(tv)",
        " tv",
        "tv ",
        "roku",
        "tizen",
        "webos",
        "tvos",
        "apple tv",
        "shield",
        "fire tv",
        "firetv",
        "chromecast",
        "xbox",
        "playstation",
        "lg ",
        "samsung",
        "vizio",
        "android tv",
        "androidtv",
    ]) {
        "tv"
    } else if has(&["iphone", "ios", "phone", "android"]) {
        "mobile"
    } else if has(&["web", "chrome", "firefox", "safari", "edge", "opera", "browser"]) {
        "browser"
    } else if has(&[
        "windows", "macos", "mac os", "linux", "desktop", "htpc", "plexamp", "mpv", "kodi",
    ]) {
        "desktop"
    } else {
        "unknown"
    }
}

/// The user's other live sessions that count for `c` next to `s`.
fn concurrent(c: &Condition, s: &PlayFacts, ctx: &Context<'_>) -> Seen {
    let p = c.params;
    let mut keys: Vec<String> = Vec::with_capacity(ctx.live.len() + 1);
    let mut related = vec![s.related("current", None)];
    let key = |x: &PlayFacts| -> String {
        if p.exempt_household && x.at_home() {
            "home".to_owned()
        } else if p.count_paused_as_one && x.paused {
            "paused".to_owned()
        } else if p.unique_ips {
            x.ip.map_or_else(|| format!("play:{}", x.play_id), ip_key)
        } else if p.exclude_same_device {
            format!("device:{}", x.device_id)
        } else {
            format!("play:{}", x.play_id)
        }
    };
    keys.push(key(s));
    for other in ctx.live.iter().filter(|o| o.play_id != s.play_id) {
        let k = key(other);
        if !keys.contains(&k) {
            keys.push(k);
            related.push(other.related("other", None));
        }
    }
    let count = u32::try_from(keys.len()).unwrap_or(u32::MAX);
    Seen { actual: Actual::Number(f64::from(count)), related, note: None }
}

/// IPv6 addresses of one home share a /64; IPv4 addresses are themselves.
fn ip_key(ip: IpAddr) -> String {
    match unmap(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn distance(c: &Condition, s: &PlayFacts, ctx: &Context<'_>) -> Seen {
    let Some(here) = s.coords() else { return Seen::unknown("no location for this session") };
    let mut best: Option<(f64, &PlayFacts)> = None;
    for other in ctx.live.iter().filter(|o| o.play_id != s.play_id) {
        if (c.params.exclude_same_device && other.device_id == s.device_id)
            || (c.params.exempt_household && other.at_home())
            || (other.ip.is_some() && other.ip == s.ip)
        {
            continue;
        }
        let Some(there) = other.coords() else { continue };
        let km = haversine_km(here, there);
        if best.is_none_or(|(b, _)| km > b) {
            best = Some((km, other));
        }
    }
    match best {
        Some((km, other)) => Seen {
            actual: Actual::Number(round1(km)),
            related: vec![s.related("current", None), other.related("other", Some(km))],
            note: None,
        },
        None => Seen {
            actual: Actual::Number(0.0),
            related: Vec::new(),
            note: Some("no other located live session".to_owned()),
        },
    }
}

fn travel(c: &Condition, s: &PlayFacts, ctx: &Context<'_>) -> Seen {
    let p = c.params;
    // The latest earlier play on another device or from another address.
    let previous = ctx
        .live
        .iter()
        .chain(ctx.history)
        .filter(|o| o.play_id != s.play_id && o.started_at <= s.started_at)
        .filter(|o| o.device_id != s.device_id || o.ip != s.ip)
        .filter(|o| !(p.exempt_household && o.at_home()))
        .filter(|o| s.started_at - o.stopped_at.unwrap_or(s.started_at) <= p.window_ms)
        .max_by_key(|o| (o.started_at, o.play_id));
    let Some(prev) = previous else {
        return Seen {
            actual: Actual::Number(0.0),
            related: Vec::new(),
            note: Some("no earlier play in the window".to_owned()),
        };
    };
    if prev.ip.is_some() && prev.ip == s.ip {
        return Seen {
            actual: Actual::Number(0.0),
            related: Vec::new(),
            note: Some("same address as the previous play".to_owned()),
        };
    }
    let (Some(here), Some(there)) = (s.coords(), prev.coords()) else {
        return Seen::unknown("no location for one of the two plays");
    };
    let km = haversine_km(here, there);
    if km < p.min_distance_km {
        return Seen {
            actual: Actual::Number(0.0),
            related: Vec::new(),
            note: Some(format!(
                "moved {} km, less than {} km",
                format_number(round1(km)),
                format_number(p.min_distance_km)
            )),
        };
    }
    // The time they had: from the end of the previous play (now, if it still runs) to this
    // start, and at least a minute.
    let gap_ms = (s.started_at - prev.stopped_at.unwrap_or(s.started_at)).max(60_000);
    #[expect(clippy::cast_precision_loss, reason = "milliseconds of a few years at most")]
    let hours = gap_ms as f64 / 3_600_000.0;
    let speed = round1(km / hours);
    Seen {
        actual: Actual::Number(speed),
        related: vec![prev.related("previous", None), s.related("current", Some(km))],
        note: Some(format!(
            "{} km in {}",
            format_number(round1(km)),
            crate::format::duration(gap_ms)
        )),
    }
}

fn unique_in_window(c: &Condition, s: &PlayFacts, ctx: &Context<'_>) -> Seen {
    let since = s.started_at - c.params.window_ms;
    let mut seen: Vec<String> = Vec::new();
    let mut add = |x: &PlayFacts| {
        let key = match c.field {
            Field::UniqueIpsInWindow => {
                if c.params.exempt_household && x.at_home() {
                    Some("home".to_owned())
                } else {
                    x.ip.map(ip_key)
                }
            }
            Field::UniqueDevicesInWindow => Some(x.device_id.clone()),
            Field::UniqueIspsInWindow => (!x.is_local)
                .then(|| {
                    x.geo
                        .as_ref()
                        .and_then(|g| g.isp.clone().or_else(|| g.asn.map(|a| format!("AS{a}"))))
                })
                .flatten(),
            _ => (!x.is_local).then(|| x.geo.as_ref().and_then(|g| g.country.clone())).flatten(),
        };
        if let Some(key) = key
            && !seen.contains(&key)
        {
            seen.push(key);
        }
    };
    add(s);
    for other in ctx.live.iter().filter(|o| o.play_id != s.play_id) {
        add(other);
    }
    let mut reached_start = false;
    for p in ctx.history {
        if p.started_at < since {
            reached_start = true;
            break;
        }
        if p.started_at <= s.started_at {
            add(p);
        }
    }
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let n = seen.len() as f64;
    let mut note = seen.join(", ");
    // The engine reads a bounded history: say so rather than count short in silence.
    if !reached_start && ctx.history.len() >= HISTORY_LIMIT {
        note = format!(
            "{note} (counted over the newest {} plays; the window reaches further)",
            ctx.history.len()
        );
    }
    Seen { actual: Actual::Number(n), related: Vec::new(), note: Some(note) }
}

fn new_location(s: &PlayFacts, ctx: &Context<'_>) -> Seen {
    let Some(here) = s.coords() else { return Seen::unknown("no location for this session") };
    let places = ctx.known_places();
    if places.is_empty() {
        return Seen::unknown("no known location yet");
    }
    if s.ip.is_some() && places.iter().any(|(p, _)| p.ip == s.ip) {
        return Seen {
            actual: Actual::Number(0.0),
            related: Vec::new(),
            note: Some("a known address".to_owned()),
        };
    }
    let (nearest, km) = places
        .iter()
        .map(|(p, c)| (*p, haversine_km(here, *c)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("not empty");
    Seen {
        actual: Actual::Number(round1(km)),
        related: vec![s.related("current", None), nearest.related("nearest known", Some(km))],
        note: None,
    }
}

fn country_share(c: &Condition, s: &PlayFacts, ctx: &Context<'_>) -> Seen {
    let Some(country) = s.geo.as_ref().and_then(|g| g.country.as_deref()) else {
        return Seen::unknown("no country for this address");
    };
    let since = s.started_at - c.params.days * 86_400_000;
    let (mut total, mut same) = (1_i64, 1_i64);
    let mut usual: Vec<(&str, i64)> = Vec::new();
    for p in ctx.history {
        if p.started_at < since {
            break;
        }
        if p.is_local || p.play_id == s.play_id {
            continue;
        }
        let Some(pc) = p.geo.as_ref().and_then(|g| g.country.as_deref()) else { continue };
        total += 1;
        if pc == country {
            same += 1;
        }
        match usual.iter_mut().find(|(c, _)| *c == pc) {
            Some((_, n)) => *n += 1,
            None => usual.push((pc, 1)),
        }
    }
    if total < c.params.min_sessions {
        return Seen::unknown(&format!(
            "{total} located plays, fewer than {}",
            c.params.min_sessions
        ));
    }
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let pct = round1(same as f64 * 100.0 / total as f64);
    let mode = usual.iter().max_by_key(|(_, n)| *n).map_or(country, |(c, _)| *c);
    Seen {
        actual: Actual::Number(pct),
        related: vec![s.related("current", None)],
        note: Some(format!("{same} of {total} plays from {country}; usually {mode}")),
    }
}

#[expect(clippy::cast_precision_loss, reason = "milliseconds of years")]
fn inactive_days(ctx: &Context<'_>) -> Seen {
    if let Some(s) = ctx.session {
        // Coming back: the gap before this play.
        let last = ctx
            .live
            .iter()
            .filter(|o| o.play_id != s.play_id && o.started_at <= s.started_at)
            .map(|_| s.started_at)
            .chain(ctx.history.iter().map(|p| p.stopped_at.unwrap_or(p.started_at)))
            .max()
            .unwrap_or(ctx.user.first_seen_at.min(s.started_at));
        return Seen::number(((s.started_at - last) as f64 / DAY_MS).floor().max(0.0));
    }
    if !ctx.live.is_empty() {
        return Seen::number(0.0);
    }
    let last = ctx.user.last_active_at.unwrap_or(ctx.user.first_seen_at);
    Seen {
        actual: Actual::Number(((ctx.now - last) as f64 / DAY_MS).floor().max(0.0)),
        related: Vec::new(),
        note: ctx.user.last_active_at.is_none().then(|| "never played".to_owned()),
    }
}

/// True when `kind` is numeric (used by the editor's inputs).
pub fn is_numeric(kind: Kind) -> bool {
    matches!(kind, Kind::Number | Kind::Resolution)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::RuleDef;
    use serde_json::json;

    const MIN: Ms = 60_000;
    const HOUR: Ms = 60 * MIN;
    const T: Ms = 1_800_000_000_000;

    fn geo(country: &str, city: &str, lat: f64, lon: f64) -> Geo {
        Geo {
            country: Some(country.into()),
            city: Some(city.into()),
            lat: Some(lat),
            lon: Some(lon),
            asn: Some(1),
            isp: Some(format!("ISP of {city}")),
        }
    }

    fn london() -> Geo {
        geo("GB", "London", 51.5142, -0.0931)
    }

    fn milton() -> Geo {
        geo("US", "Milton", 47.2513, -122.3149)
    }

    fn play(
        id: i64,
        device: &str,
        ip: &str,
        geo: Option<Geo>,
        started_at: Ms,
        stopped_at: Option<Ms>,
    ) -> PlayFacts {
        PlayFacts {
            play_id: id,
            user_id: 1,
            server_id: 1,
            server_name: "Plex".into(),
            title: format!("Item {id}"),
            device_id: device.into(),
            player: Some(device.into()),
            ip: Some(ip.parse().unwrap()),
            is_local: crate::geo::is_local_ip(ip.parse().unwrap()),
            geo,
            media_type: Some(MediaType::Movie),
            decision: Some(Decision::DirectPlay),
            started_at,
            stopped_at,
            ..PlayFacts::default()
        }
    }

    fn user() -> UserFacts {
        UserFacts {
            id: 1,
            name: "mallory".into(),
            trust_score: 80,
            first_seen_at: T - 400 * 24 * HOUR,
            last_active_at: None,
        }
    }

    fn rule(conditions: serde_json::Value) -> Rule {
        let def: RuleDef =
            serde_json::from_value(json!({"name": "t", "conditions": {"groups": conditions}}))
                .unwrap();
        def.compile().unwrap()
    }

    fn run(rule: &Rule, s: &PlayFacts, live: &[PlayFacts], history: &[PlayFacts]) -> Verdict {
        let u = user();
        let ctx = Context::new(s.started_at, 21, 4, Some(s), &u, live, history);
        evaluate(rule, &ctx)
    }

    fn actual(v: &Verdict) -> Actual {
        v.groups[0][0].actual.clone()
    }

    fn travel() -> Rule {
        rule(json!([[{"field": "travel_speed_kmh", "op": "gt", "value": 800}]]))
    }

    #[test]
    fn london_then_milton_within_an_hour_is_impossible_travel_with_both_ends_as_evidence() {
        let before = play(1, "laptop", "81.2.69.142", Some(london()), T, Some(T + 30 * MIN));
        let now = play(2, "tv", "216.160.83.56", Some(milton()), T + 60 * MIN, None);
        let v = run(&travel(), &now, &[], &[before]);
        assert!(v.matched);
        let e = &v.groups[0][0];
        let Actual::Number(speed) = e.actual else { panic!("{e:?}") };
        // About 7,700 km in 30 minutes.
        assert!((15_000.0..16_000.0).contains(&speed), "{speed}");
        assert_eq!(e.related.len(), 2);
        assert_eq!(
            (e.related[0].role.as_str(), e.related[0].place.as_str()),
            ("previous", "London, GB")
        );
        assert_eq!(
            (e.related[1].role.as_str(), e.related[1].place.as_str()),
            ("current", "Milton, US")
        );
        assert!(e.note.as_deref().unwrap().contains("km in 30 min"), "{:?}", e.note);
        assert!(
            v.summary().starts_with("Travel speed since the previous play (km/h)"),
            "{}",
            v.summary()
        );
        // A day later it is a plausible flight.
        let later = play(3, "tv", "216.160.83.56", Some(milton()), T + 30 * HOUR, None);
        let before = play(1, "laptop", "81.2.69.142", Some(london()), T, Some(T + 30 * MIN));
        assert!(!run(&travel(), &later, &[], &[before]).matched);
    }

    #[test]
    fn a_same_address_play_is_never_travel_even_when_the_database_moved_it() {
        // The GeoIP database changed between the plays: same address, another city.
        let before = play(1, "laptop", "81.2.69.142", Some(london()), T, Some(T + 10 * MIN));
        let now = play(2, "tv", "81.2.69.142", Some(milton()), T + 20 * MIN, None);
        let v = run(&travel(), &now, &[], &[before]);
        assert!(!v.matched);
        assert_eq!(actual(&v), Actual::Number(0.0));
        assert_eq!(v.groups[0][0].note.as_deref(), Some("same address as the previous play"));
    }

    #[test]
    fn a_phone_moving_between_wifi_and_mobile_data_in_one_city_is_not_travel() {
        let wifi = play(1, "phone", "81.2.69.142", Some(london()), T, Some(T + 5 * MIN));
        let mobile = play(
            2,
            "phone",
            "81.2.69.160",
            Some(geo("GB", "London", 51.52, -0.10)),
            T + 6 * MIN,
            None,
        );
        let v = run(&travel(), &mobile, &[], &[wifi]);
        assert!(!v.matched);
        assert!(v.groups[0][0].note.as_deref().unwrap().contains("less than 100 km"));
    }

    fn concurrent(params: serde_json::Value) -> Rule {
        rule(json!([[{"field": "concurrent_streams", "op": "gt", "value": 1, "params": params}]]))
    }

    #[test]
    fn back_to_back_episodes_and_quality_switches_on_one_device_are_one_stream() {
        // The previous episode's session lingers one poll on the same device; or a quality
        // switch shows the same device twice for a moment.
        let ep2 = play(2, "tv", "81.2.69.142", Some(london()), T + 40 * MIN, None);
        let ep1 = play(1, "tv", "81.2.69.142", Some(london()), T, None);
        let v = run(&concurrent(json!({})), &ep2, std::slice::from_ref(&ep1), &[]);
        assert_eq!(actual(&v), Actual::Number(1.0));
        assert!(!v.matched);
        // Without the option, two sessions are two streams.
        let v = run(&concurrent(json!({"exclude_same_device": false})), &ep2, &[ep1], &[]);
        assert!(v.matched);
        assert_eq!(v.groups[0][0].related.len(), 2);
    }

    #[test]
    fn a_household_with_three_devices_on_one_address_is_one_unique_ip() {
        let home = "2.125.160.216";
        let boxford = Some(geo("GB", "Boxford", 51.75, -1.25));
        let tv = play(1, "roku", home, boxford.clone(), T, None);
        let ipad = play(2, "ipad", home, boxford.clone(), T + MIN, None);
        let mac = play(3, "mac", home, boxford, T + 2 * MIN, None);
        let v =
            run(&concurrent(json!({"unique_ips": true})), &mac, &[tv.clone(), ipad.clone()], &[]);
        assert_eq!(actual(&v), Actual::Number(1.0));
        assert!(!v.matched);
        assert!(
            run(&concurrent(json!({})), &mac, &[tv.clone(), ipad.clone()], &[]).matched,
            "three devices"
        );
        // A confirmed household counts as one, plus one stream from elsewhere.
        let mut at_home = vec![tv, ipad];
        for p in &mut at_home {
            p.in_household = true;
        }
        let away = play(4, "phone", "216.160.83.56", Some(milton()), T + 3 * MIN, None);
        let v = run(&concurrent(json!({"exempt_household": true})), &away, &at_home, &[]);
        assert_eq!(actual(&v), Actual::Number(2.0));
    }

    #[test]
    fn local_and_household_sessions_are_exempt_from_geographic_conditions() {
        let geo_rule = rule(json!([[{"field": "country", "op": "not_in", "value": ["SE"]}]]));
        let lan = play(1, "tv", "192.168.1.20", None, T, None);
        let v = run(&geo_rule, &lan, &[], &[]);
        assert!(!v.matched);
        assert_eq!(v.groups[0][0].note.as_deref(), Some("exempt: on the local network"));
        let mut home = play(2, "tv", "81.2.69.142", Some(london()), T, None);
        home.in_household = true;
        assert!(!run(&geo_rule, &home, &[], &[]).matched);
        home.in_household = false;
        assert!(run(&geo_rule, &home, &[], &[]).matched);
        // Unless the rule says otherwise.
        home.in_household = true;
        let strict = rule(
            json!([[{"field": "country", "op": "not_in", "value": ["SE"], "params": {"exempt_household": false}}]]),
        );
        assert!(run(&strict, &home, &[], &[]).matched);
    }

    #[test]
    fn simultaneous_locations_measure_the_farthest_other_live_session() {
        let r = rule(json!([[{"field": "active_session_distance_km", "op": "gt", "value": 100}]]));
        let a = play(1, "laptop", "81.2.69.142", Some(london()), T, None);
        let b = play(
            2,
            "tv",
            "175.16.199.0",
            Some(geo("CN", "Changchun", 43.88, 125.32)),
            T + MIN,
            None,
        );
        let v = run(&r, &b, &[a], &[]);
        assert!(v.matched);
        let Actual::Number(km) = actual(&v) else { panic!() };
        assert!(km > 7_000.0, "{km}");
        assert_eq!(v.related().len(), 2);
    }

    #[test]
    fn new_devices_new_locations_and_country_share() {
        let history: Vec<PlayFacts> = (0..6)
            .map(|i| {
                play(
                    10 + i,
                    "tv",
                    "81.2.69.142",
                    Some(london()),
                    T - (i + 1) * 24 * HOUR,
                    Some(T - (i + 1) * 24 * HOUR + HOUR),
                )
            })
            .collect();
        let new_dev = rule(json!([[{"field": "is_new_device", "op": "eq", "value": true}]]));
        let from_us = play(1, "phone", "216.160.83.56", Some(milton()), T, None);
        assert!(run(&new_dev, &from_us, &[], &history).matched);
        let same_tv = play(2, "tv", "81.2.69.142", Some(london()), T, None);
        assert!(!run(&new_dev, &same_tv, &[], &history).matched);

        let new_loc =
            rule(json!([[{"field": "new_location_distance_km", "op": "gt", "value": 50}]]));
        let v = run(&new_loc, &from_us, &[], &history);
        assert!(v.matched);
        assert_eq!(v.groups[0][0].related[1].role, "nearest known");
        assert_eq!(actual(&run(&new_loc, &same_tv, &[], &history)), Actual::Number(0.0));
        assert_eq!(
            actual(&run(&new_loc, &from_us, &[], &[])),
            Actual::Unknown,
            "no known place: no judgement"
        );

        let share = rule(json!([[{"field": "country_share_pct", "op": "lt", "value": 20}]]));
        let v = run(&share, &from_us, &[], &history);
        assert!(v.matched, "1 of 7 plays from the US");
        assert!(v.groups[0][0].note.as_deref().unwrap().contains("usually GB"));
        assert_eq!(
            actual(&run(&share, &from_us, &[], &history[..2])),
            Actual::Unknown,
            "too few plays"
        );
    }

    #[test]
    fn a_window_past_the_history_read_says_so() {
        let limit = HISTORY_LIMIT;
        let history: Vec<PlayFacts> = (0..limit)
            .map(|i| {
                let i = i64::try_from(i).unwrap();
                play(10 + i, "tv", "81.2.69.142", Some(london()), T - (i + 1) * MIN, None)
            })
            .collect();
        let s = play(1, "tv", "81.2.69.142", Some(london()), T, None);
        let year = rule(
            json!([[{"field": "unique_ips_in_window", "op": "gt", "value": 5, "params": {"window_hours": 8760}}]]),
        );
        let v = run(&year, &s, &[], &history);
        assert!(
            v.groups[0][0].note.as_deref().unwrap().contains("counted over the newest 5000 plays")
        );
        let hour = rule(
            json!([[{"field": "unique_ips_in_window", "op": "gt", "value": 5, "params": {"window_hours": 1}}]]),
        );
        let v = run(&hour, &s, &[], &history);
        assert!(
            !v.groups[0][0].note.as_deref().unwrap().contains("newest"),
            "the hour is all there"
        );
    }

    #[test]
    fn window_counts_reach_exactly_as_far_as_asked() {
        let history: Vec<PlayFacts> = (0..30)
            .map(|i| {
                play(
                    10 + i,
                    &format!("d{i}"),
                    &format!("81.2.69.{}", i + 1),
                    Some(london()),
                    T - (i + 1) * 24 * HOUR,
                    Some(T - (i + 1) * 24 * HOUR + HOUR),
                )
            })
            .collect();
        let s = play(1, "tv", "81.2.69.142", Some(london()), T, None);
        for (hours, expected) in [(24, 2.0), (72, 4.0), (24 * 365, 31.0)] {
            let r = rule(
                json!([[{"field": "unique_ips_in_window", "op": "gt", "value": 100, "params": {"window_hours": hours}}]]),
            );
            assert_eq!(actual(&run(&r, &s, &[], &history)), Actual::Number(expected), "{hours} h");
        }
        let r = rule(
            json!([[{"field": "unique_devices_in_window", "op": "gte", "value": 3, "params": {"window_hours": 48}}]]),
        );
        assert!(run(&r, &s, &[], &history).matched);
    }

    #[test]
    fn session_and_user_fields() {
        let mut s = play(1, "Plex for Roku", "81.2.69.142", Some(london()), T, None);
        s.decision = Some(Decision::Transcode);
        s.source_resolution = Some("4K".into());
        s.stream_resolution = Some("1080p".into());
        s.paused = true;
        s.paused_since = Some(T - 20 * MIN);
        s.paused_ms = 25 * MIN;
        let cases = [
            (json!({"field": "is_transcode_downgrade", "op": "eq", "value": true}), true),
            (json!({"field": "source_resolution", "op": "gte", "value": "4K"}), true),
            (json!({"field": "stream_resolution", "op": "gt", "value": "1080p"}), false),
            (json!({"field": "device_type", "op": "eq", "value": "tv"}), true),
            (json!({"field": "ip_in_cidr", "op": "in", "value": ["81.2.69.0/24"]}), true),
            (json!({"field": "ip_in_cidr", "op": "not_in", "value": ["81.2.69.0/24"]}), false),
            (json!({"field": "city", "op": "contains", "value": "lond"}), true),
            (json!({"field": "isp", "op": "not_contains", "value": "london"}), false),
            (json!({"field": "trust_score", "op": "lt", "value": 90}), true),
            (json!({"field": "user", "op": "eq", "value": "MALLORY"}), true),
            (json!({"field": "user", "op": "eq", "value": 1}), true),
            (json!({"field": "user", "op": "neq", "value": "mallory"}), false),
            (json!({"field": "server", "op": "in", "value": ["Plex", "Emby"]}), true),
            (json!({"field": "hour_of_day", "op": "gte", "value": 21}), true),
            (json!({"field": "day_of_week", "op": "in", "value": ["friday", "sat"]}), true),
            (json!({"field": "current_pause_minutes", "op": "gte", "value": 20}), true),
            (json!({"field": "total_pause_minutes", "op": "eq", "value": 25}), true),
            (json!({"field": "media_type", "op": "eq", "value": "movie"}), true),
            (json!({"field": "account_age_days", "op": "gt", "value": 365}), true),
            (json!({"field": "is_local_network", "op": "eq", "value": false}), true),
            (json!({"field": "asn", "op": "in", "value": [1, 2]}), true),
        ];
        for (c, expected) in cases {
            let r = rule(json!([[c.clone()]]));
            assert_eq!(run(&r, &s, &[], &[]).matched, expected, "{c}");
        }
    }

    #[test]
    fn or_inside_a_group_and_across_groups_with_full_evidence() {
        let s = play(1, "tv", "81.2.69.142", Some(london()), T, None);
        let r = rule(json!([
            [{"field": "country", "op": "eq", "value": "US"}, {"field": "city", "op": "eq", "value": "London"}],
            [{"field": "trust_score", "op": "lt", "value": 50}],
            [{"field": "is_new_device", "op": "eq", "value": true}]
        ]));
        let v = run(&r, &s, &[], &[]);
        assert!(!v.matched);
        assert_eq!(v.groups.len(), 2, "stops at the first failing group");
        assert_eq!(
            (v.groups[0][0].matched, v.groups[0][1].matched),
            (false, true),
            "both conditions judged"
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["groups"][0][1]["field"], "city");
        assert_eq!(json["groups"][0][1]["actual"], "London");
        assert_eq!(json["groups"][1][0]["actual"], 80.0);
        let back: Verdict = serde_json::from_value(json).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn inactivity_is_judged_per_user_without_a_session() {
        let r = rule(json!([[{"field": "inactive_days", "op": "gt", "value": 30}]]));
        assert!(r.is_user_level());
        let mut u = user();
        u.last_active_at = Some(T - 45 * 24 * HOUR);
        let ctx = Context::new(T, 12, 0, None, &u, &[], &[]);
        let v = evaluate(&r, &ctx);
        assert!(v.matched);
        assert_eq!(actual(&v), Actual::Number(45.0));
        // Streaming now: not inactive.
        let live = [play(1, "tv", "81.2.69.142", Some(london()), T, None)];
        let ctx = Context::new(T, 12, 0, None, &u, &live, &[]);
        assert!(!evaluate(&r, &ctx).matched);
    }
}
