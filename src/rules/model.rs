//! What a rule is: condition fields, operators, parameters and actions, their identifiers in
//! the API (DESIGN.md section 6), and the validation that turns a rule as typed ([`RuleDef`])
//! into one the evaluator runs ([`Rule`]). Invalid definitions are refused with a message
//! naming the condition (`conditions.groups[0][1]`); nothing half-valid is ever stored.

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{AppError, AppResult};

/// How bad something is. Ordered: `Low < Warning < High`. Rules carry one, and their alerts
/// carry the rule's; each notification channel has a minimum and maps it to its own priorities.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Low,
    Warning,
    High,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Low, Severity::Warning, Severity::High];

    /// The name in the API and the database: `low`, `warning`, `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Warning => "warning",
            Severity::High => "high",
        }
    }

    /// For people: `Low`, `Warning`, `High`.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Low => "Low",
            Severity::Warning => "Warning",
            Severity::High => "High",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a severity (low, warning or high)"))
    }
}

/// The type of a field's value, which decides its operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Bool,
    Text,
    /// A resolution label ("720p", "4K"), ordered by size.
    Resolution,
    /// An address tested against networks.
    Network,
}

impl Kind {
    pub fn ops(self) -> &'static [Op] {
        use Op::{Contains, Eq, Gt, Gte, In, Lt, Lte, Neq, NotContains, NotIn};
        match self {
            Kind::Number | Kind::Resolution => &[Eq, Neq, Gt, Gte, Lt, Lte, In, NotIn],
            Kind::Bool => &[Eq, Neq],
            Kind::Text => &[Eq, Neq, In, NotIn, Contains, NotContains],
            Kind::Network => &[In, NotIn],
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Bool => "true or false",
            Kind::Text => "text",
            Kind::Resolution => "a resolution",
            Kind::Network => "an address",
        }
    }
}

macro_rules! fields {
    ($($variant:ident = $name:literal, $kind:ident, $label:literal;)*) => {
        /// A condition field. The identifiers are part of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field { $($variant),* }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Field::$variant => $name),* }
            }

            pub fn kind(self) -> Kind {
                match self { $(Field::$variant => Kind::$kind),* }
            }

            /// What people call it.
            pub fn label(self) -> &'static str {
                match self { $(Field::$variant => $label),* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(Field::$variant),)* _ => None }
            }
        }
    };
}

fields! {
    ConcurrentStreams = "concurrent_streams", Number, "Concurrent streams";
    ActiveSessionDistanceKm = "active_session_distance_km", Number, "Distance between live sessions (km)";
    TravelSpeedKmh = "travel_speed_kmh", Number, "Travel speed since the previous play (km/h)";
    UniqueIpsInWindow = "unique_ips_in_window", Number, "Unique IP addresses in a window";
    UniqueDevicesInWindow = "unique_devices_in_window", Number, "Unique devices in a window";
    UniqueIspsInWindow = "unique_isps_in_window", Number, "Unique ISPs in a window";
    UniqueCountriesInWindow = "unique_countries_in_window", Number, "Unique countries in a window";
    IsNewDevice = "is_new_device", Bool, "Device never seen for the user";
    NewLocationDistanceKm = "new_location_distance_km", Number, "Distance from every known location (km)";
    CountrySharePct = "country_share_pct", Number, "Share of the user's plays from this country (%)";
    InactiveDays = "inactive_days", Number, "Days without a play";
    TrustScore = "trust_score", Number, "Trust score";
    AccountAgeDays = "account_age_days", Number, "Account age (days)";
    User = "user", Text, "User (name or id)";
    Server = "server", Text, "Server (name or id)";
    MediaType = "media_type", Text, "Media type";
    Library = "library", Text, "Library";
    SourceResolution = "source_resolution", Resolution, "Source resolution";
    StreamResolution = "stream_resolution", Resolution, "Stream resolution";
    IsTranscoding = "is_transcoding", Bool, "Is transcoding";
    IsTranscodeDowngrade = "is_transcode_downgrade", Bool, "Transcodes to a lower resolution";
    SourceBitrateMbps = "source_bitrate_mbps", Number, "Source bitrate (Mbit/s)";
    DeviceType = "device_type", Text, "Device type";
    Client = "client", Text, "Client application";
    Platform = "platform", Text, "Platform";
    IsLocalNetwork = "is_local_network", Bool, "On the local network";
    InHousehold = "in_household", Bool, "From a confirmed household network";
    Country = "country", Text, "Country (ISO code)";
    City = "city", Text, "City";
    Asn = "asn", Number, "Autonomous system number";
    Isp = "isp", Text, "ISP";
    IpInCidr = "ip_in_cidr", Network, "IP address in networks";
    HourOfDay = "hour_of_day", Number, "Hour of the day (0-23, server time)";
    DayOfWeek = "day_of_week", Text, "Day of the week";
    CurrentPauseMinutes = "current_pause_minutes", Number, "Minutes in the current pause";
    TotalPauseMinutes = "total_pause_minutes", Number, "Minutes paused in total";
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Field::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown field {s:?}")))
    }
}

/// Values some text fields are limited to.
pub const MEDIA_TYPES: &[&str] = &["movie", "episode", "track", "live", "clip", "other"];
pub const DEVICE_TYPES: &[&str] = &["mobile", "tablet", "tv", "desktop", "browser", "unknown"];
pub const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Field {
    /// Where the user streams from: local and household sessions are exempt unless the
    /// condition's `exempt_household` parameter is false.
    pub fn is_geographic(self) -> bool {
        matches!(
            self,
            Field::ActiveSessionDistanceKm
                | Field::TravelSpeedKmh
                | Field::NewLocationDistanceKm
                | Field::CountrySharePct
                | Field::Country
                | Field::City
        )
    }

    /// Changes while a stream runs, so rules using it run again on a schedule.
    pub fn is_time_based(self) -> bool {
        matches!(
            self,
            Field::HourOfDay
                | Field::DayOfWeek
                | Field::CurrentPauseMinutes
                | Field::TotalPauseMinutes
                | Field::InactiveDays
        )
    }

    /// Changes when the server switches quality.
    pub fn is_quality(self) -> bool {
        matches!(
            self,
            Field::IsTranscoding
                | Field::IsTranscodeDowngrade
                | Field::StreamResolution
                | Field::SourceResolution
                | Field::SourceBitrateMbps
        )
    }

    /// Judged per user, without a session (the scheduled sweep evaluates these).
    pub fn is_user_level(self) -> bool {
        matches!(
            self,
            Field::InactiveDays | Field::TrustScore | Field::AccountAgeDays | Field::User
        )
    }

    /// The parameters this field takes.
    pub fn params(self) -> &'static [ParamSpec] {
        const WINDOW: ParamSpec =
            ParamSpec::int("window_hours", 24, 1, 87_600, "hours the window reaches back");
        const SAME_DEVICE: ParamSpec = ParamSpec::flag(
            "exclude_same_device",
            true,
            "count a device once, whatever its sessions",
        );
        const HOUSEHOLD: ParamSpec =
            ParamSpec::flag("exempt_household", true, "local and household sessions do not count");
        const CONCURRENT: &[ParamSpec] = &[
            SAME_DEVICE,
            ParamSpec::flag("unique_ips", false, "count addresses, not streams"),
            ParamSpec::flag(
                "exempt_household",
                false,
                "streams from the local network or a household count as one",
            ),
            ParamSpec::flag("count_paused_as_one", false, "paused streams together count as one"),
        ];
        const DISTANCE: &[ParamSpec] = &[SAME_DEVICE, HOUSEHOLD];
        const TRAVEL: &[ParamSpec] = &[
            ParamSpec::int("window_hours", 24, 1, 87_600, "how far back the previous play may be"),
            ParamSpec::int("min_distance_km", 100, 0, 20_000, "shorter moves are not travel"),
            HOUSEHOLD,
        ];
        const IPS: &[ParamSpec] = &[
            WINDOW,
            ParamSpec::flag("exempt_household", true, "local and household addresses count as one"),
        ];
        const WINDOW_ONLY: &[ParamSpec] = &[WINDOW];
        const HOUSEHOLD_ONLY: &[ParamSpec] = &[HOUSEHOLD];
        const SHARE: &[ParamSpec] = &[
            ParamSpec::int("days", 90, 1, 3650, "days of history the share is taken over"),
            ParamSpec::int("min_sessions", 5, 1, 100_000, "fewer plays than this: no judgement"),
            HOUSEHOLD,
        ];
        match self {
            Field::ConcurrentStreams => CONCURRENT,
            Field::ActiveSessionDistanceKm => DISTANCE,
            Field::TravelSpeedKmh => TRAVEL,
            Field::UniqueIpsInWindow => IPS,
            Field::UniqueDevicesInWindow
            | Field::UniqueIspsInWindow
            | Field::UniqueCountriesInWindow => WINDOW_ONLY,
            Field::NewLocationDistanceKm | Field::Country | Field::City => HOUSEHOLD_ONLY,
            Field::CountrySharePct => SHARE,
            _ => &[],
        }
    }
}

/// A parameter of a field.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    /// `None` for flags.
    pub range: Option<(i64, i64)>,
    pub default: i64,
    pub help: &'static str,
}

impl ParamSpec {
    const fn flag(name: &'static str, default: bool, help: &'static str) -> Self {
        Self { name, range: None, default: default as i64, help }
    }

    const fn int(name: &'static str, default: i64, min: i64, max: i64, help: &'static str) -> Self {
        Self { name, range: Some((min, max)), default, help }
    }

    pub fn is_flag(&self) -> bool {
        self.range.is_none()
    }
}

/// A condition's parameters with their defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub exclude_same_device: bool,
    pub unique_ips: bool,
    pub exempt_household: bool,
    pub count_paused_as_one: bool,
    pub window_ms: i64,
    pub min_distance_km: f64,
    pub days: i64,
    pub min_sessions: i64,
}

/// An operator. The identifiers are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Contains,
    NotContains,
}

impl Op {
    pub const ALL: [Op; 10] = [
        Op::Eq,
        Op::Neq,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::In,
        Op::NotIn,
        Op::Contains,
        Op::NotContains,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Contains => "contains",
            Op::NotContains => "not_contains",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Neq => "≠",
            Op::Gt => ">",
            Op::Gte => "≥",
            Op::Lt => "<",
            Op::Lte => "≤",
            Op::In => "is one of",
            Op::NotIn => "is not one of",
            Op::Contains => "contains",
            Op::NotContains => "does not contain",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn is_list(self) -> bool {
        matches!(self, Op::In | Op::NotIn)
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Op::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown operator {s:?}")))
    }
}

/// A condition's value, checked against its field's type. Text is kept in lower case.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    Number(f64),
    Numbers(Vec<f64>),
    Bool(bool),
    Text(String),
    Texts(Vec<String>),
    Networks(Vec<IpNet>),
}

/// A checked condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    pub threshold: Threshold,
    pub params: Params,
    /// The value as typed, for evidence and editing.
    pub value: Value,
    /// The parameters as typed (only those given).
    pub raw_params: Map<String, Value>,
}

/// Which sessions a terminate or message action reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    #[default]
    Triggering,
    Oldest,
    Newest,
    AllButOldest,
    All,
}

impl Target {
    pub const ALL: [Target; 5] =
        [Target::Triggering, Target::Oldest, Target::Newest, Target::AllButOldest, Target::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Triggering => "triggering",
            Target::Oldest => "oldest",
            Target::Newest => "newest",
            Target::AllButOldest => "all_but_oldest",
            Target::All => "all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Target::Triggering => "the triggering stream",
            Target::Oldest => "the oldest stream",
            Target::Newest => "the newest stream",
            Target::AllButOldest => "all but the oldest",
            Target::All => "all the user's streams",
        }
    }
}

/// What a rule does when it matches (a violation is always recorded first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Tell notification channels, at most once per cooldown per user.
    Notify {
        #[serde(default)]
        channels: Vec<i64>,
        #[serde(default)]
        cooldown_minutes: u32,
    },
    AdjustTrust {
        amount: i32,
    },
    SetTrust {
        value: i32,
    },
    ResetTrust,
    /// Stop streams; with a delay, only if the rule still matches then.
    Terminate {
        #[serde(default)]
        target: Target,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default)]
        delay_seconds: u32,
        #[serde(default)]
        cooldown_minutes: u32,
    },
    /// Show a message on the client (Jellyfin and Emby; Plex has no such API).
    MessageClient {
        message: String,
        #[serde(default)]
        target: Target,
    },
    LogOnly {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Notify { .. } => "notify",
            Action::AdjustTrust { .. } => "adjust_trust",
            Action::SetTrust { .. } => "set_trust",
            Action::ResetTrust => "reset_trust",
            Action::Terminate { .. } => "terminate",
            Action::MessageClient { .. } => "message_client",
            Action::LogOnly { .. } => "log_only",
        }
    }

    pub const KINDS: [&'static str; 7] = [
        "notify",
        "adjust_trust",
        "set_trust",
        "reset_trust",
        "terminate",
        "message_client",
        "log_only",
    ];

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Action::Notify { channels, cooldown_minutes } => format!(
                "notify {} (cooldown {cooldown_minutes} min)",
                if channels.is_empty() {
                    "every channel that takes violations".to_owned()
                } else {
                    format!("channels {channels:?}")
                }
            ),
            Action::AdjustTrust { amount } => format!("adjust trust by {amount:+}"),
            Action::SetTrust { value } => format!("set trust to {value}"),
            Action::ResetTrust => "reset trust to 100".to_owned(),
            Action::Terminate { target, delay_seconds, .. } => {
                if *delay_seconds > 0 {
                    format!("stop {} after {delay_seconds} s if it still matches", target.label())
                } else {
                    format!("stop {}", target.label())
                }
            }
            Action::MessageClient { message, target } => {
                format!("message {}: “{message}”", target.label())
            }
            Action::LogOnly { .. } => "log only".to_owned(),
        }
    }

    fn validate(&self, at: &str) -> AppResult<()> {
        let bad = |m: String| Err(AppError::validation(at, m));
        match self {
            Action::AdjustTrust { amount } if !(-100..=100).contains(amount) || *amount == 0 => {
                bad(format!(
                    "adjust_trust: amount must be from -100 to 100 and not 0, not {amount}"
                ))
            }
            Action::SetTrust { value } if !(0..=100).contains(value) => {
                bad(format!("set_trust: value must be from 0 to 100, not {value}"))
            }
            Action::Terminate { delay_seconds, message, cooldown_minutes, .. } => {
                if *delay_seconds > 300 {
                    return bad("terminate: delay_seconds must be at most 300".to_owned());
                }
                if *cooldown_minutes > 10_080 {
                    return bad("terminate: cooldown_minutes must be at most 10080".to_owned());
                }
                if message.as_ref().is_some_and(|m| m.chars().count() > 200) {
                    return bad("terminate: the message must be at most 200 characters".to_owned());
                }
                Ok(())
            }
            Action::MessageClient { message, .. }
                if message.trim().is_empty() || message.chars().count() > 200 =>
            {
                bad("message_client: the message must be 1 to 200 characters".to_owned())
            }
            Action::Notify { cooldown_minutes, channels } => {
                if *cooldown_minutes > 10_080 {
                    return bad("notify: cooldown_minutes must be at most 10080".to_owned());
                }
                if channels.iter().any(|c| *c <= 0) {
                    return bad("notify: channels are notifier ids".to_owned());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// One condition as typed in the API or the editor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    pub field: String,
    pub op: String,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
}

/// Condition groups: OR inside a group, AND across groups.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionsDef {
    pub groups: Vec<Vec<ConditionDef>>,
}

fn yes() -> bool {
    true
}

/// A rule as the API and the editor carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Servers it applies to; empty: all.
    #[serde(default)]
    pub server_ids: Vec<i64>,
    /// Media users it never applies to.
    #[serde(default)]
    pub exempt_user_ids: Vec<i64>,
    pub conditions: ConditionsDef,
    #[serde(default)]
    pub actions: Vec<Value>,
}

/// A checked rule, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// 0 until stored.
    pub id: i64,
    pub name: String,
    pub description: String,
    pub severity: Severity,
    pub enabled: bool,
    pub server_ids: Vec<i64>,
    pub exempt_user_ids: Vec<i64>,
    pub groups: Vec<Vec<Condition>>,
    pub actions: Vec<Action>,
    pub preset: Option<String>,
}

impl Rule {
    /// Every condition, in order.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.groups.iter().flatten()
    }

    pub fn uses(&self, test: impl Fn(Field) -> bool) -> bool {
        self.conditions().any(|c| test(c.field))
    }

    /// Runs without a session, per user, on the schedule: it only reads user-level fields
    /// and at least one of them is inactivity.
    pub fn is_user_level(&self) -> bool {
        self.conditions().all(|c| c.field.is_user_level())
            && self.uses(|f| f == Field::InactiveDays)
    }

    /// Whether this rule applies to a session of `server_id` by `user_id`.
    pub fn applies_to(&self, server_id: Option<i64>, user_id: i64) -> bool {
        !self.exempt_user_ids.contains(&user_id)
            && (self.server_ids.is_empty()
                || server_id.is_none_or(|id| self.server_ids.contains(&id)))
    }

    /// How far back history must reach to evaluate this rule, milliseconds.
    pub fn lookback_ms(&self) -> i64 {
        const DAY: i64 = 86_400_000;
        self.conditions()
            .map(|c| match c.field {
                Field::IsNewDevice | Field::NewLocationDistanceKm | Field::InactiveDays => {
                    3650 * DAY
                }
                Field::CountrySharePct => c.params.days * DAY,
                Field::TravelSpeedKmh
                | Field::UniqueIpsInWindow
                | Field::UniqueDevicesInWindow
                | Field::UniqueIspsInWindow
                | Field::UniqueCountriesInWindow => c.params.window_ms,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// The rule as the API shows it.
    pub fn def(&self) -> RuleDef {
        RuleDef {
            name: self.name.clone(),
            description: self.description.clone(),
            severity: self.severity,
            enabled: self.enabled,
            server_ids: self.server_ids.clone(),
            exempt_user_ids: self.exempt_user_ids.clone(),
            conditions: ConditionsDef {
                groups: self
                    .groups
                    .iter()
                    .map(|g| {
                        g.iter()
                            .map(|c| ConditionDef {
                                field: c.field.as_str().to_owned(),
                                op: c.op.as_str().to_owned(),
                                value: c.value.clone(),
                                params: c.raw_params.clone(),
                            })
                            .collect()
                    })
                    .collect(),
            },
            actions: self
                .actions
                .iter()
                .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
                .collect(),
        }
    }
}

impl RuleDef {
    /// Checks everything; the first problem is returned, naming where it is.
    pub fn compile(&self) -> AppResult<Rule> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::validation(
                "name",
                "give the rule a name of 1 to 100 characters",
            ));
        }
        if self.description.chars().count() > 2000 {
            return Err(AppError::validation("description", "at most 2000 characters"));
        }
        if self.conditions.groups.is_empty() {
            return Err(AppError::validation("conditions", "a rule needs at least one condition"));
        }
        if self.conditions.groups.len() > 20 {
            return Err(AppError::validation("conditions", "at most 20 groups"));
        }
        let mut groups = Vec::with_capacity(self.conditions.groups.len());
        for (g, group) in self.conditions.groups.iter().enumerate() {
            if group.is_empty() {
                return Err(AppError::validation(
                    format!("conditions.groups[{g}]"),
                    "this group has no condition; remove it or add one",
                ));
            }
            if group.len() > 20 {
                return Err(AppError::validation(
                    format!("conditions.groups[{g}]"),
                    "at most 20 conditions in a group",
                ));
            }
            let mut conditions = Vec::with_capacity(group.len());
            for (i, c) in group.iter().enumerate() {
                conditions.push(compile_condition(c, &format!("conditions.groups[{g}][{i}]"))?);
            }
            groups.push(conditions);
        }
        if self.actions.len() > 20 {
            return Err(AppError::validation("actions", "at most 20 actions"));
        }
        let mut actions = Vec::with_capacity(self.actions.len());
        for (i, raw) in self.actions.iter().enumerate() {
            let at = format!("actions[{i}]");
            let action: Action = serde_json::from_value(raw.clone()).map_err(|e| {
                AppError::validation(
                    &at,
                    format!(
                        "{e}; an action is {{\"type\": one of {}, ...}}",
                        Action::KINDS.join(", ")
                    ),
                )
            })?;
            action.validate(&at)?;
            actions.push(action);
        }
        Ok(Rule {
            id: 0,
            name: name.to_owned(),
            description: self.description.trim().to_owned(),
            severity: self.severity,
            enabled: self.enabled,
            server_ids: self.server_ids.clone(),
            exempt_user_ids: self.exempt_user_ids.clone(),
            groups,
            actions,
            preset: None,
        })
    }
}

fn compile_condition(c: &ConditionDef, at: &str) -> AppResult<Condition> {
    let fail = |m: String| AppError::validation(at, m);
    let field = Field::parse(c.field.trim()).ok_or_else(|| {
        fail(format!(
            "unknown field {:?}; fields are {}",
            c.field,
            Field::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let kind = field.kind();
    let op = Op::parse(c.op.trim()).ok_or_else(|| {
        fail(format!(
            "{field}: unknown operator {:?}; use {}",
            c.op,
            kind.ops().iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    if !kind.ops().contains(&op) {
        return Err(fail(format!(
            "{field}: operator {} does not apply to {}; use {}",
            op.as_str(),
            kind.noun(),
            kind.ops().iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let threshold = threshold(field, op, &c.value).map_err(|m| fail(format!("{field}: {m}")))?;
    let params = params(field, &c.params).map_err(|m| fail(format!("{field}: {m}")))?;
    Ok(Condition {
        field,
        op,
        threshold,
        params,
        value: c.value.clone(),
        raw_params: c.params.clone(),
    })
}

fn params(field: Field, raw: &Map<String, Value>) -> Result<Params, String> {
    let specs = field.params();
    for name in raw.keys() {
        if !specs.iter().any(|s| s.name == name) {
            return Err(if specs.is_empty() {
                format!("takes no parameters, but got {name:?}")
            } else {
                format!(
                    "unknown parameter {name:?}; it takes {}",
                    specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                )
            });
        }
    }
    let get = |name: &str| -> Result<i64, String> {
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            // Not a parameter of this field: the default of the other fields' spec.
            return Ok(match name {
                "exclude_same_device" | "exempt_household" => 1,
                "window_hours" => 24,
                "min_distance_km" => 100,
                "days" => 90,
                "min_sessions" => 5,
                _ => 0,
            });
        };
        let Some(value) = raw.get(name) else { return Ok(spec.default) };
        match spec.range {
            None => value
                .as_bool()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                .map(i64::from)
                .ok_or_else(|| format!("parameter {name} must be true or false")),
            Some((min, max)) => {
                let n = value
                    .as_i64()
                    .or_else(|| value.as_f64().filter(|f| f.fract() == 0.0).map(whole))
                    .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| format!("parameter {name} must be a whole number"))?;
                if (min..=max).contains(&n) {
                    Ok(n)
                } else {
                    Err(format!("parameter {name} must be from {min} to {max}, not {n}"))
                }
            }
        }
    };
    Ok(Params {
        exclude_same_device: get("exclude_same_device")? != 0,
        unique_ips: get("unique_ips")? != 0,
        exempt_household: get("exempt_household")? != 0,
        count_paused_as_one: get("count_paused_as_one")? != 0,
        window_ms: get("window_hours")? * 3_600_000,
        #[expect(clippy::cast_precision_loss, reason = "at most 20,000 km")]
        min_distance_km: get("min_distance_km")? as f64,
        days: get("days")?,
        min_sessions: get("min_sessions")?,
    })
}

/// A value from JSON: a number, or text that reads as one.
/// A float known to be whole as an integer (saturating at the ends of `i64`).
#[expect(clippy::cast_possible_truncation, reason = "called on whole numbers; `as` saturates")]
pub fn whole(f: f64) -> i64 {
    f as i64
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|f: &f64| f.is_finite())
}

/// A list value: a JSON array, or comma-separated text (as typed in the editor).
fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect(),
        other => vec![other.clone()],
    }
}

fn text(field: Field, v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) if matches!(field, Field::User | Field::Server | Field::Library) => {
            n.to_string()
        }
        _ => return Err(format!("{v} is not text")),
    };
    if s.is_empty() {
        return Err("the value is empty".to_owned());
    }
    let lower = s.to_lowercase();
    let allowed: &[&str] = match field {
        Field::MediaType => MEDIA_TYPES,
        Field::DeviceType => DEVICE_TYPES,
        Field::DayOfWeek => WEEKDAYS,
        _ => &[],
    };
    if field == Field::DayOfWeek {
        // "monday" and "Mon" both mean mon.
        let short: String = lower.chars().take(3).collect();
        if WEEKDAYS.contains(&short.as_str()) {
            return Ok(short);
        }
    }
    if !allowed.is_empty() && !allowed.contains(&lower.as_str()) {
        return Err(format!("{s:?} is not one of {}", allowed.join(", ")));
    }
    if field == Field::Country && lower.len() != 2 {
        return Err(format!("{s:?} is not a two-letter country code (ISO 3166-1, e.g. US)"));
    }
    Ok(lower)
}

fn resolution(v: &Value) -> Result<f64, String> {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(format!("{v} is not a resolution")),
    };
    crate::media::model::resolution_from_label(&raw)
        .and_then(|l| crate::media::model::resolution_rank(&l))
        .map(f64::from)
        .ok_or_else(|| {
            format!("{raw:?} is not a resolution (SD, 480p, 576p, 720p, 1080p, 1440p, 4K, 8K)")
        })
}

fn threshold(field: Field, op: Op, value: &Value) -> Result<Threshold, String> {
    let kind = field.kind();
    if op.is_list() {
        let list = items(value);
        if list.is_empty() {
            return Err("the list is empty".to_owned());
        }
        if list.len() > 1000 {
            return Err("at most 1000 values".to_owned());
        }
        return match kind {
            Kind::Number => list
                .iter()
                .map(|v| number(v).ok_or_else(|| format!("{v} is not a number")))
                .collect::<Result<_, _>>()
                .map(Threshold::Numbers),
            Kind::Resolution => {
                list.iter().map(resolution).collect::<Result<_, _>>().map(Threshold::Numbers)
            }
            Kind::Text => {
                list.iter().map(|v| text(field, v)).collect::<Result<_, _>>().map(Threshold::Texts)
            }
            Kind::Network => list
                .iter()
                .map(|v| {
                    v.as_str().and_then(crate::geo::model::parse_network).ok_or_else(|| {
                        format!("{v} is not an address or a network like 10.0.0.0/8")
                    })
                })
                .collect::<Result<_, _>>()
                .map(Threshold::Networks),
            Kind::Bool => Err("true or false is not a list".to_owned()),
        };
    }
    match kind {
        Kind::Number => {
            number(value).map(Threshold::Number).ok_or_else(|| format!("{value} is not a number"))
        }
        Kind::Resolution => resolution(value).map(Threshold::Number),
        Kind::Bool => value
            .as_bool()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Threshold::Bool)
            .ok_or_else(|| format!("{value} is not true or false")),
        Kind::Text => text(field, value).map(Threshold::Text),
        Kind::Network => Err("use in or not_in with a list of networks".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(conditions: Value, actions: Value) -> RuleDef {
        serde_json::from_value(json!({"name": "r", "conditions": conditions, "actions": actions}))
            .unwrap()
    }

    fn error(d: &RuleDef) -> (String, String) {
        match d.compile() {
            Err(AppError::Validation { field, message }) => (field, message),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_field_and_operator_identifier_round_trips() {
        assert_eq!(Field::ALL.len(), 36);
        for f in Field::ALL {
            assert_eq!(Field::parse(f.as_str()), Some(*f));
            assert!(!f.kind().ops().is_empty());
        }
        for o in Op::ALL {
            assert_eq!(Op::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn a_valid_rule_compiles_with_defaults_filled_in() {
        let d = def(
            json!({"groups": [[{"field": "travel_speed_kmh", "op": "gt", "value": 800}],
                              [{"field": "country", "op": "not_in", "value": ["us", "CA"]},
                               {"field": "ip_in_cidr", "op": "in", "value": "10.0.0.0/8, 192.168.1.7"}]]}),
            json!([{"type": "adjust_trust", "amount": -20}, {"type": "terminate", "target": "newest"}]),
        );
        let rule = d.compile().unwrap();
        let travel = &rule.groups[0][0];
        assert_eq!(travel.threshold, Threshold::Number(800.0));
        assert_eq!(travel.params.window_ms, 24 * 3_600_000);
        assert!((travel.params.min_distance_km - 100.0).abs() < f64::EPSILON);
        assert_eq!(rule.groups[1][0].threshold, Threshold::Texts(vec!["us".into(), "ca".into()]));
        assert!(matches!(&rule.groups[1][1].threshold, Threshold::Networks(n) if n.len() == 2));
        assert_eq!(
            rule.actions[1],
            Action::Terminate {
                target: Target::Newest,
                message: None,
                delay_seconds: 0,
                cooldown_minutes: 0
            }
        );
        // And back to the API shape.
        let again = rule.def().compile().unwrap();
        assert_eq!(again.groups, rule.groups);
    }

    #[test]
    fn invalid_definitions_are_refused_naming_the_condition() {
        let cases: Vec<(Value, Value, &str, &str)> = vec![
            (
                json!({"groups": [[{"field": "speed", "op": "gt", "value": 1}]]}),
                json!([]),
                "conditions.groups[0][0]",
                "unknown field \"speed\"",
            ),
            (
                json!({"groups": [[{"field": "country", "op": "eq", "value": "GB"}, {"field": "travel_speed_kmh", "op": "contains", "value": 1}]]}),
                json!([]),
                "conditions.groups[0][1]",
                "travel_speed_kmh: operator contains does not apply to a number",
            ),
            (
                json!({"groups": [[{"field": "trust_score", "op": "lt", "value": "high"}]]}),
                json!([]),
                "conditions.groups[0][0]",
                "trust_score: \"high\" is not a number",
            ),
            (
                json!({"groups": [[{"field": "country", "op": "eq", "value": "Britain"}]]}),
                json!([]),
                "conditions.groups[0][0]",
                "two-letter country code",
            ),
            (
                json!({"groups": [[{"field": "unique_ips_in_window", "op": "gt", "value": 3, "params": {"window_hours": 0}}]]}),
                json!([]),
                "conditions.groups[0][0]",
                "window_hours must be from 1 to 87600",
            ),
            (
                json!({"groups": [[{"field": "trust_score", "op": "gt", "value": 3, "params": {"window_hours": 5}}]]}),
                json!([]),
                "conditions.groups[0][0]",
                "takes no parameters",
            ),
            (
                json!({"groups": [[{"field": "media_type", "op": "eq", "value": "film"}]]}),
                json!([]),
                "conditions.groups[0][0]",
                "is not one of movie",
            ),
            (
                json!({"groups": [[{"field": "ip_in_cidr", "op": "in", "value": ["10.0.0.0/33"]}]]}),
                json!([]),
                "conditions.groups[0][0]",
                "is not an address",
            ),
            (json!({"groups": [[]]}), json!([]), "conditions.groups[0]", "no condition"),
            (json!({"groups": []}), json!([]), "conditions", "at least one condition"),
            (
                json!({"groups": [[{"field": "is_new_device", "op": "eq", "value": true}]]}),
                json!([{"type": "adjust_trust", "amount": -500}]),
                "actions[0]",
                "from -100 to 100",
            ),
            (
                json!({"groups": [[{"field": "is_new_device", "op": "eq", "value": true}]]}),
                json!([{"type": "explode"}]),
                "actions[0]",
                "unknown variant",
            ),
            (
                json!({"groups": [[{"field": "is_new_device", "op": "eq", "value": true}]]}),
                json!([{"type": "terminate", "delay_seconds": 301}]),
                "actions[0]",
                "at most 300",
            ),
        ];
        for (conditions, actions, field, needle) in cases {
            let (f, m) = error(&def(conditions.clone(), actions));
            assert_eq!(f, field, "{conditions}: {m}");
            assert!(m.contains(needle), "{conditions}: {m:?} lacks {needle:?}");
        }
        // Window fields are not silently capped: a year is a year.
        let year = def(
            json!({"groups": [[{"field": "unique_countries_in_window", "op": "gt", "value": 3, "params": {"window_hours": 8760}}]]}),
            json!([]),
        );
        assert_eq!(year.compile().unwrap().groups[0][0].params.window_ms, 8760 * 3_600_000);
    }
}
