//! History: finished plays with filters, stable cursor paging, a detail page, CSV export.

use askama::Template;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rocket::State;
use rocket::http::{ContentType, Header};
use rocket::response::content::RawHtml;
use rocket::response::stream::ByteStream;

use crate::auth::{Scope, Viewer};
use crate::db::Db;
use crate::db::media_users::{self, MediaUserRow};
use crate::db::plays::{self, Cursor, HistoryFilter, HistoryRow};
use crate::db::servers::{self, ServerRow};
use crate::error::{AppError, AppResult};
use crate::format;
use crate::media::model::MediaType;
use crate::web::htmx::HxRequest;
use crate::web::layout::Layout;
use crate::web::render;

/// Rows per page.
pub const PAGE_SIZE: u32 = 50;

/// The filters as the URL carries them (the API and the pages share this).
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct HistoryQuery {
    /// Media user id.
    pub user: Option<i64>,
    pub server_id: Option<i64>,
    pub media_type: Option<String>,
    /// `YYYY-MM-DD` (a local day) or an RFC 3339 time.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (up to the end of that local day) or an RFC 3339 time (exclusive).
    pub to: Option<String>,
    pub q: Option<String>,
    /// Exactly this platform, player, address, country (ISO code) or decision.
    pub platform: Option<String>,
    pub player: Option<String>,
    pub ip: Option<String>,
    pub country: Option<String>,
    /// `direct_play`, `direct_stream` or `transcode`.
    pub decision: Option<String>,
    /// `true` (watched) or `false`; empty: both.
    pub watched: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// A time filter in milliseconds; `end_of_day` moves a plain date to the next midnight.
pub fn parse_time(field: &str, raw: &str, end_of_day: bool) -> AppResult<i64> {
    let raw = raw.trim();
    if let Ok(ts) = raw.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let date: Date = raw.parse().map_err(|_| {
        AppError::validation(
            field,
            format!("{raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        )
    })?;
    let date = if end_of_day {
        date.tomorrow().map_err(|_| AppError::validation(field, "out of range"))?
    } else {
        date
    };
    date.to_zoned(TimeZone::system())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|_| AppError::validation(field, "out of range"))
}

impl HistoryQuery {
    pub fn filter(&self) -> AppResult<HistoryFilter> {
        let media_type = match self.media_type.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => Some(MediaType::parse(t).ok_or_else(|| {
                AppError::validation(
                    "media_type",
                    "one of movie, episode, track, live, clip, other",
                )
            })?),
            None => None,
        };
        let from = self
            .from
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_time("from", s, false))
            .transpose()?;
        let to = self
            .to
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_time("to", s, true))
            .transpose()?;
        Ok(HistoryFilter {
            user_id: self.user,
            server_id: self.server_id,
            media_type,
            from,
            to,
            q: self.q.clone().filter(|q| !q.trim().is_empty()),
            platform: given(self.platform.as_ref()),
            player: given(self.player.as_ref()),
            ip: match given(self.ip.as_ref()) {
                Some(ip) => Some(
                    ip.parse::<std::net::IpAddr>()
                        .map_err(|_| {
                            AppError::validation("ip", format!("{ip:?} is not an IP address"))
                        })?
                        .to_string(),
                ),
                None => None,
            },
            country: given(self.country.as_ref()).map(|c| c.to_ascii_uppercase()),
            decision: match given(self.decision.as_ref()) {
                Some(d) if ["direct_play", "direct_stream", "transcode"].contains(&d.as_str()) => {
                    Some(d)
                }
                Some(_) => {
                    return Err(AppError::validation(
                        "decision",
                        "direct_play, direct_stream or transcode",
                    ));
                }
                None => None,
            },
            watched: match given(self.watched.as_ref()).as_deref() {
                Some("true" | "1" | "yes") => Some(true),
                Some("false" | "0" | "no") => Some(false),
                Some(_) => return Err(AppError::validation("watched", "true or false")),
                None => None,
            },
        })
    }

    pub fn cursor(&self) -> AppResult<Option<Cursor>> {
        match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(raw) => Cursor::decode(raw)
                .map(Some)
                .ok_or_else(|| AppError::validation("cursor", "not a cursor from a previous page")),
            None => Ok(None),
        }
    }

    pub fn is_user(&self, id: impl format::Num) -> bool {
        self.user == Some(id.get())
    }

    pub fn is_server(&self, id: impl format::Num) -> bool {
        self.server_id == Some(id.get())
    }

    /// The query string of these filters (without the cursor), for links.
    pub fn to_query(&self) -> String {
        let (user, server) =
            (self.user.map(|v| v.to_string()), self.server_id.map(|v| v.to_string()));
        format::query_string([
            ("user", user.as_deref()),
            ("server_id", server.as_deref()),
            ("media_type", self.media_type.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("q", self.q.as_deref()),
            ("platform", self.platform.as_deref()),
            ("player", self.player.as_deref()),
            ("ip", self.ip.as_deref()),
            ("country", self.country.as_deref()),
            ("decision", self.decision.as_deref()),
            ("watched", self.watched.as_deref()),
        ])
    }

    pub fn is_decision(&self, d: &str) -> bool {
        self.decision.as_deref() == Some(d)
    }

    pub fn is_watched(&self, w: &str) -> bool {
        self.watched.as_deref() == Some(w)
    }
}

/// A text filter as typed, trimmed; `None` when blank.
fn given(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A history row as the table shows it.
pub struct RowView {
    pub row: HistoryRow,
    pub title: String,
    pub started: String,
    pub duration: String,
    pub progress_pct: i64,
}

pub fn view(row: HistoryRow) -> RowView {
    RowView {
        title: row.full_title(),
        started: format::local_time(row.started_at),
        duration: format::duration(row.play_ms.unwrap_or(0)),
        progress_pct: format::percent(row.progress_ms.unwrap_or(0), row.duration_ms.unwrap_or(0)),
        row,
    }
}

#[derive(Template)]
#[template(path = "history/index.html")]
struct HistoryPage {
    layout: Layout,
    query: HistoryQuery,
    users: Vec<MediaUserRow>,
    servers: Vec<ServerRow>,
    types: [MediaType; 6],
    rows: Vec<RowView>,
    next: Option<String>,
    filters: String,
    first_page: bool,
}

#[derive(Template)]
#[template(path = "history/index.html", block = "results")]
struct ResultsFragment {
    layout: Layout,
    rows: Vec<RowView>,
    next: Option<String>,
    filters: String,
    first_page: bool,
}

#[rocket::get("/history?<query..>")]
pub async fn index(
    viewer: Viewer,
    layout: Layout,
    query: HistoryQuery,
    db: &State<Db>,
    hx: HxRequest,
) -> AppResult<RawHtml<String>> {
    let filter = query.filter()?;
    let cursor = query.cursor()?;
    let scope = viewer.0.scope();
    let page = db.read(move |conn| plays::history(conn, &filter, scope, cursor, PAGE_SIZE)).await?;
    let rows: Vec<RowView> = page.items.into_iter().map(view).collect();
    let next = page.next.map(Cursor::encode);
    let filters = query.to_query();
    let first_page = cursor.is_none();
    if hx.is_htmx() && hx.target.as_deref() == Some("history-results") {
        return render(&ResultsFragment { layout, rows, next, filters, first_page });
    }
    let (users, servers) =
        db.read(|conn| Ok((media_users::list(conn)?, servers::list(conn)?))).await?;
    let users = users.into_iter().filter(|u| scope.allows(u.id)).collect();
    let servers = if scope == Scope::All { servers } else { Vec::new() };
    render(&HistoryPage {
        layout: layout.nav("history"),
        query,
        users,
        servers,
        types: MediaType::ALL,
        rows,
        next,
        filters,
        first_page,
    })
}

#[derive(Template)]
#[template(path = "history/detail.html")]
struct DetailPage {
    layout: Layout,
    play: RowView,
    chain: Vec<RowView>,
    stopped: String,
    paused: String,
}

#[rocket::get("/history/<id>")]
pub async fn detail(
    viewer: Viewer,
    layout: Layout,
    id: i64,
    db: &State<Db>,
) -> AppResult<RawHtml<String>> {
    let scope = viewer.0.scope();
    let (play, chain) = db
        .read(move |conn| {
            let play = plays::get(conn, id)?
                .filter(|p| scope.allows(p.user_id))
                .ok_or_else(|| AppError::not_found(format!("play {id}")))?;
            let chain = plays::chain(conn, play.reference_id.unwrap_or(play.id))?;
            Ok((play, chain))
        })
        .await?;
    let chain: Vec<RowView> =
        if chain.len() > 1 { chain.into_iter().map(view).collect() } else { Vec::new() };
    let stopped = play.stopped_at.map_or_else(|| "still playing".to_owned(), format::local_time);
    let paused = format::duration(play.paused_ms);
    render(&DetailPage { layout: layout.nav("history"), play: view(play), chain, stopped, paused })
}

/// A CSV field: quoted when needed, and defused when a spreadsheet would run it as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
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

const CSV_HEADER: &str = "id,started_at,stopped_at,user,server,media_type,title,grandparent_title,season,episode,year,player,product,platform,ip,is_local,country,city,decision,source_resolution,stream_resolution,bandwidth_kbps,play_ms,paused_ms,progress_ms,duration_ms,watched\n";

fn csv_line(r: &HistoryRow) -> String {
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let s = |v: &Option<String>| csv_field(v.as_deref().unwrap_or_default());
    let fields = [
        r.id.to_string(),
        format::rfc3339(r.started_at),
        r.stopped_at.map(format::rfc3339).unwrap_or_default(),
        csv_field(&r.user_name),
        csv_field(&r.server_name),
        r.media_type.clone(),
        csv_field(&r.title),
        s(&r.grandparent_title),
        n(r.season),
        n(r.episode),
        n(r.year),
        s(&r.player),
        s(&r.product),
        s(&r.platform),
        s(&r.ip),
        r.is_local.to_string(),
        s(&r.geo.country),
        s(&r.geo.city),
        r.decision.clone(),
        s(&r.source_resolution),
        s(&r.stream_resolution),
        n(r.bandwidth_kbps),
        n(r.play_ms),
        r.paused_ms.to_string(),
        n(r.progress_ms),
        n(r.duration_ms),
        r.watched.to_string(),
    ];
    let mut line = fields.join(",");
    line.push('\n');
    line
}

/// The CSV download: every matching play, streamed a page at a time.
#[derive(rocket::response::Responder)]
pub struct Csv<S> {
    body: S,
    content_type: ContentType,
    disposition: Header<'static>,
}

#[rocket::get("/history.csv?<query..>")]
pub fn csv(
    viewer: Viewer,
    query: HistoryQuery,
    db: &State<Db>,
) -> AppResult<Csv<ByteStream![Vec<u8>]>> {
    let filter = query.filter()?;
    let scope = viewer.0.scope();
    let db = db.inner().clone();
    let body = ByteStream! {
        yield CSV_HEADER.as_bytes().to_vec();
        let mut after = None;
        loop {
            let f = filter.clone();
            let page = match db.read(move |conn| plays::history(conn, &f, scope, after, 500)).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "CSV export stopped early");
                    break;
                }
            };
            let chunk: String = page.items.iter().map(csv_line).collect();
            yield chunk.into_bytes();
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    };
    Ok(Csv {
        body,
        content_type: ContentType::CSV,
        disposition: Header::new(
            "Content-Disposition",
            "attachment; filename=\"streamwarden-history.csv\"",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }

    #[test]
    fn filters_from_the_url() {
        let q = HistoryQuery {
            media_type: Some("movie".into()),
            from: Some("2026-01-02".into()),
            to: Some("2026-01-02".into()),
            ..HistoryQuery::default()
        };
        let f = q.filter().unwrap();
        assert_eq!(f.media_type, Some(MediaType::Movie));
        let (from, to) = (f.from.unwrap(), f.to.unwrap());
        assert!(to - from >= 23 * 3_600_000 && to - from <= 25 * 3_600_000, "one local day");
        assert!(
            HistoryQuery { media_type: Some("book".into()), ..HistoryQuery::default() }
                .filter()
                .is_err()
        );
        assert!(
            HistoryQuery { from: Some("yesterday".into()), ..HistoryQuery::default() }
                .filter()
                .is_err()
        );
        assert_eq!(
            HistoryQuery { from: Some("2026-01-02T00:00:00Z".into()), ..HistoryQuery::default() }
                .filter()
                .unwrap()
                .from,
            Some(1_767_312_000_000)
        );
        assert!(
            HistoryQuery { cursor: Some("zz".into()), ..HistoryQuery::default() }.cursor().is_err()
        );
        let q =
            HistoryQuery { q: Some("star wars".into()), user: Some(3), ..HistoryQuery::default() };
        assert_eq!(q.to_query(), "user=3&q=star+wars");
    }
}
