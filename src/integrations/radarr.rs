//! Radarr (API v3): a deleted movie is found by its TMDB id and deleted with its files.

use reqwest::Method;
use serde::Deserialize;

use super::http::{CallError, Http};
use super::{Integration, IntegrationKind, Outcome, Target, test_failure};
use crate::media::library::ItemKind;

pub struct Radarr {
    pub http: Http,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SystemStatus {
    pub app_name: Option<String>,
    pub version: Option<String>,
}

#[derive(Deserialize)]
struct Movie {
    id: i64,
}

/// Checks `/api/v3/system/status` answers as `app` ("Radarr", "Sonarr").
pub(crate) async fn status(
    http: &Http,
    kind: IntegrationKind,
    app: &str,
) -> Result<String, String> {
    let status: SystemStatus =
        http.get("/api/v3/system/status", &[]).await.map_err(|e| test_failure(kind, &e))?;
    match status.app_name.as_deref() {
        Some(name) if !name.eq_ignore_ascii_case(app) => {
            Err(format!("this is {name}, not {app}: check the kind and the URL"))
        }
        _ => Ok(status.version.unwrap_or_else(|| "unknown version".to_owned())),
    }
}

#[rocket::async_trait]
impl Integration for Radarr {
    fn kind(&self) -> IntegrationKind {
        IntegrationKind::Radarr
    }

    async fn test(&self) -> Result<String, String> {
        status(&self.http, IntegrationKind::Radarr, "Radarr").await
    }

    async fn remove(&self, target: &Target) -> Outcome {
        if target.kind != ItemKind::Movie {
            return Outcome::Skipped("Radarr has movies only".to_owned());
        }
        let Some(tmdb) = target.ids.tmdb.as_deref() else {
            return Outcome::Skipped("the movie has no TMDB id to find it by".to_owned());
        };
        let movies: Vec<Movie> = match self.http.get("/api/v3/movie", &[("tmdbId", tmdb)]).await {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(format!("looking it up: {e}")),
        };
        if movies.is_empty() {
            return Outcome::NotFound;
        }
        for movie in movies {
            let path = format!("/api/v3/movie/{}", movie.id);
            let query = [("deleteFiles", "true"), ("addImportExclusion", "false")];
            match self.http.call(Method::DELETE, &path, &query, None).await {
                Ok(_) | Err(CallError::NotFound) => {}
                Err(e) => return Outcome::Failed(format!("deleting it: {e}")),
            }
        }
        Outcome::Deleted
    }
}
