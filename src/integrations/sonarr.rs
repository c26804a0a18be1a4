//! Sonarr (API v3): a deleted show is found by its TVDB id and deleted with its files; a
//! deleted season is unmonitored first (so it is not downloaded again) and only then are
//! its episode files deleted.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::http::{CallError, Http};
use super::{Integration, IntegrationKind, Outcome, Target};
use crate::media::library::ItemKind;

pub struct Sonarr {
    pub http: Http,
}

#[derive(Deserialize)]
struct Series {
    id: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EpisodeFile {
    id: i64,
    season_number: i64,
}

impl Sonarr {
    async fn remove_season(&self, series: i64, season: i64) -> Outcome {
        let path = format!("/api/v3/series/{series}");
        let mut full: Value = match self.http.get(&path, &[]).await {
            Ok(v) => v,
            Err(e) => return Outcome::Failed(format!("reading the series: {e}")),
        };
        let Some(seasons) = full.get_mut("seasons").and_then(Value::as_array_mut) else {
            return Outcome::Failed("the series has no seasons list".to_owned());
        };
        let Some(entry) = seasons.iter_mut().find(|s| s["seasonNumber"].as_i64() == Some(season))
        else {
            return Outcome::NotFound;
        };
        entry["monitored"] = Value::Bool(false);
        if let Err(e) = self.http.call(Method::PUT, &path, &[], Some(&full)).await {
            // A file deleted while the season is still monitored would be downloaded again.
            return Outcome::Failed(format!(
                "unmonitoring season {season} (its files were left alone): {e}"
            ));
        }
        let id = series.to_string();
        let files: Vec<EpisodeFile> =
            match self.http.get("/api/v3/episodefile", &[("seriesId", &id)]).await {
                Ok(f) => f,
                Err(e) => {
                    return Outcome::Failed(format!(
                        "season {season} unmonitored; listing its files: {e}"
                    ));
                }
            };
        for file in files.iter().filter(|f| f.season_number == season) {
            let path = format!("/api/v3/episodefile/{}", file.id);
            match self.http.call(Method::DELETE, &path, &[], None).await {
                Ok(_) | Err(CallError::NotFound) => {}
                Err(e) => {
                    return Outcome::Failed(format!(
                        "season {season} unmonitored; deleting its files: {e}"
                    ));
                }
            }
        }
        Outcome::Deleted
    }
}

#[rocket::async_trait]
impl Integration for Sonarr {
    fn kind(&self) -> IntegrationKind {
        IntegrationKind::Sonarr
    }

    async fn test(&self) -> Result<String, String> {
        super::radarr::status(&self.http, IntegrationKind::Sonarr, "Sonarr").await
    }

    async fn remove(&self, target: &Target) -> Outcome {
        if !matches!(target.kind, ItemKind::Show | ItemKind::Season) {
            return Outcome::Skipped("Sonarr has shows only".to_owned());
        }
        let Some(tvdb) = target.ids.tvdb.as_deref() else {
            return Outcome::Skipped("the show has no TVDB id to find it by".to_owned());
        };
        let found: Vec<Series> = match self.http.get("/api/v3/series", &[("tvdbId", tvdb)]).await {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(format!("looking it up: {e}")),
        };
        let Some(series) = found.first() else { return Outcome::NotFound };
        if let (ItemKind::Season, Some(season)) = (target.kind, target.season) {
            return self.remove_season(series.id, season).await;
        }
        let path = format!("/api/v3/series/{}", series.id);
        let query = [("deleteFiles", "true"), ("addImportListExclusion", "false")];
        match self.http.call(Method::DELETE, &path, &query, None).await {
            Ok(_) => Outcome::Deleted,
            Err(CallError::NotFound) => Outcome::NotFound,
            Err(e) => Outcome::Failed(format!("deleting it: {e}")),
        }
    }
}
