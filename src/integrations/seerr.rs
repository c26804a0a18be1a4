//! Seerr, Overseerr and Jellyseerr (API v1): the deleted title's media record is cleared so
//! it shows as not available and can be requested again; for a season, the requests that
//! asked for it are deleted (Seerr keeps no record per season).

use reqwest::Method;
use serde::Deserialize;

use super::http::{CallError, Http};
use super::{Integration, IntegrationKind, Outcome, Target, test_failure};
use crate::media::library::ItemKind;

pub struct Seerr {
    pub http: Http,
}

#[derive(Deserialize)]
struct About {
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Details {
    media_info: Option<MediaInfo>,
}

#[derive(Deserialize)]
struct MediaInfo {
    id: i64,
    #[serde(default)]
    requests: Vec<Request>,
}

#[derive(Deserialize)]
struct Request {
    id: i64,
    #[serde(default)]
    seasons: Vec<SeasonRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeasonRequest {
    season_number: i64,
}

#[rocket::async_trait]
impl Integration for Seerr {
    fn kind(&self) -> IntegrationKind {
        IntegrationKind::Seerr
    }

    async fn test(&self) -> Result<String, String> {
        let about: About = self
            .http
            .get("/api/v1/settings/about", &[])
            .await
            .map_err(|e| test_failure(IntegrationKind::Seerr, &e))?;
        about.version.ok_or_else(|| {
            "something answers there, but not Seerr: check the kind and the URL".to_owned()
        })
    }

    async fn remove(&self, target: &Target) -> Outcome {
        let kind = match target.kind {
            ItemKind::Movie => "movie",
            ItemKind::Show | ItemKind::Season => "tv",
            ItemKind::Episode => return Outcome::Skipped("Seerr has no episodes".to_owned()),
        };
        let Some(tmdb) = target.ids.tmdb.as_deref() else {
            return Outcome::Skipped(format!(
                "the {} has no TMDB id to find it by",
                target.kind.as_str()
            ));
        };
        let details: Details = match self.http.get(&format!("/api/v1/{kind}/{tmdb}"), &[]).await {
            Ok(d) => d,
            Err(CallError::NotFound) => return Outcome::NotFound,
            Err(e) => return Outcome::Failed(format!("looking it up: {e}")),
        };
        let Some(media) = details.media_info else { return Outcome::NotFound };
        if let (ItemKind::Season, Some(season)) = (target.kind, target.season) {
            let asked: Vec<i64> = media
                .requests
                .iter()
                .filter(|r| r.seasons.iter().any(|s| s.season_number == season))
                .map(|r| r.id)
                .collect();
            if asked.is_empty() {
                return Outcome::NotFound;
            }
            for request in asked {
                match self
                    .http
                    .call(Method::DELETE, &format!("/api/v1/request/{request}"), &[], None)
                    .await
                {
                    Ok(_) | Err(CallError::NotFound) => {}
                    Err(e) => return Outcome::Failed(format!("deleting request {request}: {e}")),
                }
            }
            return Outcome::Deleted;
        }
        match self
            .http
            .call(Method::DELETE, &format!("/api/v1/media/{}", media.id), &[], None)
            .await
        {
            Ok(_) => Outcome::Deleted,
            Err(CallError::NotFound) => Outcome::NotFound,
            Err(e) => Outcome::Failed(format!("clearing it: {e}")),
        }
    }
}
