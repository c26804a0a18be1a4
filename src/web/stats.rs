//! `/stats`: charts and tables of a period, and the filters the page and the API share.

use crate::auth::Scope as Visible;
use crate::db::stats::Scope;
use crate::db::{Db, media_users};
use crate::error::{AppError, AppResult};
use crate::stats::period::{self, Asked};
use crate::stats::query::{DEFAULT_TOP, MAX_TOP};
use crate::stats::{StatsQuery, StatsService, query};

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
