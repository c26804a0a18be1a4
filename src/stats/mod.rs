//! Statistics of history: daily rollups kept in step with the plays ([`rollups`]), the
//! period arithmetic of the instance's calendar ([`calendar`]) and the answers read from
//! them ([`query`]).

pub mod calendar;
pub mod map;
pub mod period;
pub mod query;
pub mod rollups;
#[cfg(test)]
mod scan;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::db::Db;
use crate::error::AppResult;
use crate::tasks::StopSignal;

pub use calendar::Calendar;
pub use query::{Stats, StatsQuery};

/// How often the background fold looks for changed history. Requests fold what is left
/// before they read, so this only keeps that work small.
const FOLD_EVERY: Duration = Duration::from_secs(10);

/// The statistics service: the calendar the rollups are folded in and the database.
#[derive(Clone)]
pub struct StatsService {
    db: Db,
    calendar: Calendar,
}

impl StatsService {
    pub fn new(db: Db, calendar: Calendar) -> Self {
        Self { db, calendar }
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Folds whatever history changed since the last fold, if anything did.
    pub async fn catch_up(&self) -> AppResult<rollups::Folded> {
        if !self.db.read(rollups::is_stale).await? {
            return Ok(rollups::Folded::default());
        }
        let cal = self.calendar.clone();
        self.db.write(move |c| rollups::catch_up(c, &cal)).await
    }

    /// The statistics of a period, exact up to the last finished play.
    pub async fn stats(&self, q: StatsQuery) -> AppResult<Stats> {
        self.catch_up().await?;
        let cal = self.calendar.clone();
        self.db.read(move |c| query::stats(c, &cal, &q)).await
    }

    /// The places of a period's plays.
    pub async fn places(&self, q: StatsQuery) -> AppResult<map::History> {
        self.catch_up().await?;
        self.db.read(move |c| map::history(c, &q)).await
    }

    /// Folds now, stale or not: also notices a new time zone, which refolds everything.
    pub async fn fold_now(&self) -> AppResult<rollups::Folded> {
        let cal = self.calendar.clone();
        self.db.write(move |c| rollups::catch_up(c, &cal)).await
    }

    /// Folds at start, then every few seconds until shutdown.
    pub async fn run(self, mut stop: StopSignal) {
        let mut first = true;
        loop {
            let folded = if first { self.fold_now().await } else { self.catch_up().await };
            first = false;
            match folded {
                Ok(f) if f.days > 0 => {
                    tracing::debug!(days = f.days, plays = f.plays, "statistics folded");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot fold the statistics"),
            }
            if stop.sleep(FOLD_EVERY).await {
                return;
            }
        }
    }
}
