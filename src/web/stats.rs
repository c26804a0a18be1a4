//! `/stats`: charts and tables of a period, and the filters the page and the API share.

use askama::Template;
use rocket::State;
use rocket::http::ContentType;
use rocket::response::content::RawHtml;

use crate::auth::{Scope as Visible, Viewer};
use crate::db::servers::{self, ServerRow};
use crate::db::stats::{Scope, UserChoice, user_choices};
use crate::db::{Db, media_users};
use crate::error::{AppError, AppResult};
use crate::format;
use crate::stats::period::{self, Asked};
use crate::stats::query::{Count, DEFAULT_TOP, MAX_TOP, Named, TopTitle};
use crate::stats::{Stats, StatsQuery, StatsService, query};
use crate::web::charts::{self, Columns};
use crate::web::layout::Layout;
use crate::web::render;

/// The filters as the URL carries them.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct StatsParams {
    /// `7`, `30`, `90`, `365`, `all` or `custom` (with `from` and `to`).
    pub period: Option<String>,
    /// `YYYY-MM-DD` (a local day) or an RFC 3339 time (its local day).
    pub from: Option<String>,
    pub to: Option<String>,
    pub server_id: Option<i64>,
    /// Media user id.
    pub user: Option<i64>,
    /// Length of the top lists (10; at most 100).
    pub top: Option<usize>,
}

/// Matches nothing: a viewer without a media user, or a user and a server that disagree.
const NOBODY: Scope = Scope { server_id: 0, user_id: -1 };

fn present(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl StatsParams {
    /// The query these filters ask for, as far as `visible` lets the caller see, and the
    /// user's name when one is chosen.
    pub async fn query(
        &self,
        visible: Visible,
        db: &Db,
        service: &StatsService,
    ) -> AppResult<(StatsQuery, Option<String>)> {
        let cal = service.calendar();
        let user = match visible {
            Visible::All => self.user,
            Visible::MediaUser(own) => Some(own),
            Visible::Nothing => None,
        };
        let mut scope = match (visible, user) {
            (Visible::Nothing, _) => NOBODY,
            (_, None) => Scope { server_id: self.server_id.unwrap_or(0), user_id: 0 },
            (_, Some(_)) => Scope::default(),
        };
        let mut user_name = None;
        if let Some(id) = user.filter(|_| scope != NOBODY) {
            let row = db
                .read(move |c| media_users::get(c, id))
                .await?
                .ok_or_else(|| AppError::not_found(format!("media user {id}")))?;
            scope = if self.server_id.is_some_and(|s| s != row.server_id) {
                NOBODY
            } else {
                Scope { server_id: row.server_id, user_id: id }
            };
            user_name = Some(row.name);
        }
        let from =
            present(self.from.as_ref()).map(|s| period::parse_day("from", s, cal)).transpose()?;
        let to = present(self.to.as_ref()).map(|s| period::parse_day("to", s, cal)).transpose()?;
        let asked = Asked { period: self.period.as_deref(), from, to };
        let first_play = if asked.period == Some("all") && from.is_none() && to.is_none() {
            service.catch_up().await?;
            db.read(move |c| query::first_day(c, scope)).await?
        } else {
            None
        };
        let today = cal.day_of(crate::time::now_ms());
        let (first, last) = period::resolve(&asked, today, first_play)?;
        let top = self.top.unwrap_or(DEFAULT_TOP);
        if top == 0 || top > MAX_TOP {
            return Err(AppError::validation("top", format!("1 to {MAX_TOP}")));
        }
        Ok((StatsQuery { first, last, scope, top }, user_name))
    }
}

/// A table of numbers: under each chart, and its CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// For ranking lists: each row's bar, in percent of the biggest.
    pub bars: Vec<f64>,
}

impl Table {
    /// Each row with its bar, if it has one.
    pub fn lines(&self) -> Vec<(&Vec<String>, Option<f64>)> {
        self.rows.iter().enumerate().map(|(i, r)| (r, self.bars.get(i).copied())).collect()
    }
}

/// One block of the page: a chart (columns or bars) with its table and CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Also the `table` of its CSV link.
    pub id: &'static str,
    pub title: &'static str,
    pub chart: Option<Columns>,
    pub table: Table,
    /// A note under the title (the peak, the share of transcodes).
    pub note: String,
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
/// Media types stacked in the daily charts, in this order; the rest is "Other".
const STACKED: [(&str, &str); 3] =
    [("movie", "Movies"), ("episode", "Episodes"), ("track", "Music")];

fn hours(ms: i64) -> String {
    // One decimal, in hours: charts of watch time read best in hours.
    format!("{}.{}", ms / 3_600_000, (ms % 3_600_000) / 360_000)
}

/// "1.2 GB": estimated traffic.
pub fn data_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes.max(0);
    let mut unit = 0;
    let mut tenth = 0;
    while value >= 1000 && unit < UNITS.len() - 1 {
        tenth = (value % 1000) / 100;
        value /= 1000;
        unit += 1;
    }
    if unit == 0 { format!("{value} B") } else { format!("{value}.{tenth} {}", UNITS[unit]) }
}

fn ranking(items: &[(String, i64, i64, Option<i64>)], users_column: bool) -> Table {
    let max = items.iter().map(|i| i.1).max().unwrap_or(0);
    let mut headers = vec!["Name", "Plays", "Hours"];
    if users_column {
        headers.push("Users");
    }
    Table {
        headers,
        rows: items
            .iter()
            .map(|(name, plays, watch, users)| {
                let mut row = vec![name.clone(), plays.to_string(), hours(*watch)];
                if users_column {
                    row.push(users.unwrap_or(0).to_string());
                }
                row
            })
            .collect(),
        bars: items.iter().map(|i| charts::share(i.1, max)).collect(),
    }
}

fn ranked(id: &'static str, title: &'static str, table: Table) -> Section {
    Section { id, title, chart: None, table, note: String::new() }
}

/// Every section of the page, in order.
pub fn sections(s: &Stats) -> Vec<Section> {
    let days: Vec<String> = s.plays_by_day.iter().map(|d| d.date.clone()).collect();
    let by_type = |d: &crate::stats::query::DayCount, watch: bool| -> Vec<i64> {
        let pick = |c: &Count| if watch { c.watch_ms } else { c.plays };
        let mut v: Vec<i64> =
            STACKED.iter().map(|(t, _)| d.by_type.get(*t).map_or(0, pick)).collect();
        let stacked: i64 = v.iter().sum();
        v.push((if watch { d.watch_ms } else { d.plays }) - stacked);
        v
    };
    let series: Vec<&str> = STACKED.iter().map(|(_, n)| *n).chain(["Other"]).collect();
    let plays_values: Vec<Vec<i64>> = s.plays_by_day.iter().map(|d| by_type(d, false)).collect();
    let watch_values: Vec<Vec<i64>> = s.plays_by_day.iter().map(|d| by_type(d, true)).collect();
    let day_table = Table {
        headers: vec!["Day", "Plays", "Movies", "Episodes", "Music", "Other", "Hours", "Data"],
        rows: s
            .plays_by_day
            .iter()
            .zip(&plays_values)
            .map(|(d, v)| {
                let mut row = vec![d.date.clone(), d.plays.to_string()];
                row.extend(v.iter().map(ToString::to_string));
                row.push(hours(d.watch_ms));
                row.push(data_size(d.bytes));
                row
            })
            .collect(),
        bars: Vec::new(),
    };
    let count_table = |label: &'static str, names: Vec<String>, counts: &[Count]| Table {
        headers: vec![label, "Plays", "Hours"],
        rows: names
            .into_iter()
            .zip(counts)
            .map(|(n, c)| vec![n, c.plays.to_string(), hours(c.watch_ms)])
            .collect(),
        bars: Vec::new(),
    };
    let weekday_names: Vec<String> = WEEKDAYS.iter().map(|d| (*d).to_owned()).collect();
    let hour_names: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let peak_index = s.concurrent.iter().position(|c| Some(&c.at) == s.peak_concurrent.at.as_ref());
    let conc_days: Vec<String> = s.concurrent.iter().map(|c| c.date.clone()).collect();
    let conc_values: Vec<Vec<i64>> =
        s.concurrent.iter().map(|c| vec![c.direct_play, c.direct_stream, c.transcode]).collect();
    let d = &s.decisions;
    let decided = d.direct_play + d.direct_stream + d.transcode;
    let pct = |n: i64| format!("{} %", format::percent(n, decided));
    let named = |list: &[Named]| -> Vec<(String, i64, i64, Option<i64>)> {
        list.iter().map(|n| (n.name.clone(), n.plays, n.watch_ms, None)).collect()
    };
    let titles = |list: &[TopTitle]| -> Vec<(String, i64, i64, Option<i64>)> {
        list.iter()
            .map(|t| {
                let name = t.year.map_or_else(|| t.title.clone(), |y| format!("{} ({y})", t.title));
                (name, t.plays, t.watch_ms, Some(t.users))
            })
            .collect()
    };
    vec![
        Section {
            id: "plays_by_day",
            title: "Plays per day",
            chart: Some(charts::columns(
                "plays_by_day",
                &series,
                &days,
                &plays_values,
                |v| v.to_string(),
                None,
            )),
            table: day_table.clone(),
            note: String::new(),
        },
        Section {
            id: "watch_by_day",
            title: "Watch time per day (hours)",
            chart: Some(charts::columns(
                "watch_by_day",
                &series,
                &days,
                &watch_values,
                hours,
                None,
            )),
            table: day_table,
            note: String::new(),
        },
        Section {
            id: "by_weekday",
            title: "Plays by day of the week",
            chart: Some(charts::columns(
                "by_weekday",
                &["Plays"],
                &weekday_names,
                &s.by_weekday.iter().map(|c| vec![c.plays]).collect::<Vec<_>>(),
                |v| v.to_string(),
                None,
            )),
            table: count_table("Day", weekday_names.clone(), &s.by_weekday),
            note: String::new(),
        },
        Section {
            id: "by_hour",
            title: "Plays by hour of the day",
            chart: Some(charts::columns(
                "by_hour",
                &["Plays"],
                &hour_names,
                &s.by_hour.iter().map(|c| vec![c.plays]).collect::<Vec<_>>(),
                |v| v.to_string(),
                None,
            )),
            table: count_table("Hour", hour_names.clone(), &s.by_hour),
            note: String::new(),
        },
        Section {
            id: "concurrent",
            title: "Most streams at once, per day",
            chart: Some(charts::columns(
                "concurrent",
                &["Direct play", "Direct stream", "Transcode"],
                &conc_days,
                &conc_values,
                |v| v.to_string(),
                peak_index,
            )),
            table: Table {
                headers: vec!["Day", "Peak", "At", "Direct play", "Direct stream", "Transcode"],
                rows: s
                    .concurrent
                    .iter()
                    .map(|c| {
                        let at =
                            c.at.parse::<jiff::Timestamp>()
                                .map_or(0, jiff::Timestamp::as_millisecond);
                        vec![
                            c.date.clone(),
                            c.count.to_string(),
                            format::local_time(at),
                            c.direct_play.to_string(),
                            c.direct_stream.to_string(),
                            c.transcode.to_string(),
                        ]
                    })
                    .collect(),
                bars: Vec::new(),
            },
            note: match &s.peak_concurrent.at {
                Some(at) => {
                    let ms =
                        at.parse::<jiff::Timestamp>().map_or(0, jiff::Timestamp::as_millisecond);
                    format!(
                        "Peak: {} streams at {}",
                        s.peak_concurrent.count,
                        format::local_time(ms)
                    )
                }
                None => "No streams in this period.".to_owned(),
            },
        },
        Section {
            id: "bandwidth_by_day",
            title: "Data sent per day (estimated, MB)",
            chart: Some(charts::columns(
                "bandwidth_by_day",
                &["Data"],
                &days,
                &s.plays_by_day.iter().map(|d| vec![d.bytes / 1_000_000]).collect::<Vec<_>>(),
                |v| format!("{v} MB"),
                None,
            )),
            table: Table {
                headers: vec!["Day", "Data"],
                rows: s
                    .plays_by_day
                    .iter()
                    .map(|d| vec![d.date.clone(), data_size(d.bytes)])
                    .collect(),
                bars: Vec::new(),
            },
            note: format!("{} in this period", data_size(s.totals.bytes)),
        },
        Section {
            id: "decisions",
            title: "Direct play, direct stream and transcode",
            chart: None,
            table: Table {
                headers: vec!["Decision", "Plays", "Share"],
                rows: vec![
                    vec!["Direct play".into(), d.direct_play.to_string(), pct(d.direct_play)],
                    vec!["Direct stream".into(), d.direct_stream.to_string(), pct(d.direct_stream)],
                    vec!["Transcode".into(), d.transcode.to_string(), pct(d.transcode)],
                ],
                bars: [d.direct_play, d.direct_stream, d.transcode]
                    .iter()
                    .map(|n| charts::share(*n, decided))
                    .collect(),
            },
            note: format!("{} of plays transcoded", pct(d.transcode)),
        },
        ranked("platforms", "Platforms", ranking(&named(&s.platforms), false)),
        ranked("players", "Players", ranking(&named(&s.players), false)),
        ranked(
            "quality",
            "Source → stream resolution",
            ranking(
                &s.quality
                    .iter()
                    .map(|q| {
                        (
                            format!("{} → {}", q.source_resolution, q.stream_resolution),
                            q.plays,
                            q.watch_ms,
                            None,
                        )
                    })
                    .collect::<Vec<_>>(),
                false,
            ),
        ),
        ranked(
            "top_users",
            "Top users",
            ranking(
                &s.top_users
                    .iter()
                    .map(|u| (u.user.name.clone(), u.plays, u.watch_ms, None))
                    .collect::<Vec<_>>(),
                false,
            ),
        ),
        ranked("top_movies", "Top movies", ranking(&titles(&s.top_movies), true)),
        ranked("top_shows", "Top shows", ranking(&titles(&s.top_shows), true)),
        ranked(
            "top_libraries",
            "Top libraries",
            ranking(
                &s.top_libraries
                    .iter()
                    .map(|l| (l.name.clone(), l.plays, l.watch_ms, Some(l.users)))
                    .collect::<Vec<_>>(),
                true,
            ),
        ),
    ]
}

/// Cuts a field for CSV (quotes, and no formula injection into spreadsheets).
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) && value.parse::<f64>().is_err() {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// A table as CSV.
pub fn csv(table: &Table) -> String {
    let mut out = table.headers.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for row in &table.rows {
        out.push_str(&row.iter().map(|v| csv_field(v)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// A period the picker offers: (value, label).
pub const PERIODS: [(&str, &str); 6] = [
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "365 days"),
    ("all", "All"),
    ("custom", "Custom"),
];

impl StatsParams {
    /// The query string of these filters, for links (CSV, the map).
    pub fn to_query(&self) -> String {
        let (server, user) =
            (self.server_id.map(|v| v.to_string()), self.user.map(|v| v.to_string()));
        format::query_string([
            ("period", self.period.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("server_id", server.as_deref()),
            ("user", user.as_deref()),
        ])
    }

    /// The period picked (`custom` when days are given).
    pub fn picked(&self) -> &str {
        if present(self.from.as_ref()).is_some() || present(self.to.as_ref()).is_some() {
            "custom"
        } else {
            self.period.as_deref().filter(|p| !p.is_empty()).unwrap_or("30")
        }
    }

    pub fn is_user(&self, id: &i64) -> bool {
        self.user == Some(*id)
    }

    pub fn is_server(&self, id: &i64) -> bool {
        self.server_id == Some(*id)
    }
}

#[derive(Template)]
#[template(path = "stats/index.html")]
struct StatsPage {
    layout: Layout,
    params: StatsParams,
    filters: String,
    stats: Stats,
    sections: Vec<Section>,
    users: Vec<UserChoice>,
    servers: Vec<ServerRow>,
    periods: &'static [(&'static str, &'static str)],
    user_name: Option<String>,
}

impl StatsPage {
    fn watch_hours(&self) -> String {
        hours(self.stats.totals.watch_ms)
    }
}

#[rocket::get("/stats?<params..>")]
pub async fn index(
    viewer: Viewer,
    layout: Layout,
    params: StatsParams,
    db: &State<Db>,
    service: &State<StatsService>,
) -> AppResult<RawHtml<String>> {
    let visible = viewer.0.scope();
    let (query, user_name) = params.query(visible, db, service).await?;
    let stats = service.stats(query).await?;
    let (users, servers) = db.read(|c| Ok((user_choices(c)?, servers::list(c)?))).await?;
    let users = users.into_iter().filter(|u| visible.allows(u.0)).collect();
    let servers = if visible == Visible::All { servers } else { Vec::new() };
    render(&StatsPage {
        layout: layout.nav("stats"),
        filters: params.to_query(),
        sections: sections(&stats),
        stats,
        params,
        users,
        servers,
        periods: &PERIODS,
        user_name,
    })
}

/// One section's table as CSV: `/stats.csv?table=top_movies&period=90`.
#[rocket::get("/stats.csv?<table>&<params..>")]
pub async fn csv_export(
    viewer: Viewer,
    table: &str,
    params: StatsParams,
    db: &State<Db>,
    service: &State<StatsService>,
) -> AppResult<(ContentType, rocket::response::content::RawText<String>)> {
    let (query, _) = params.query(viewer.0.scope(), db, service).await?;
    let stats = service.stats(query).await?;
    let section = sections(&stats)
        .into_iter()
        .find(|s| s.id == table)
        .ok_or_else(|| AppError::validation("table", "one of the tables of /stats"))?;
    Ok((ContentType::CSV, rocket::response::content::RawText(csv(&section.table))))
}
