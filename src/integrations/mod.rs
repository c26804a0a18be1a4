//! Radarr, Sonarr and Seerr (Overseerr, Jellyseerr): what a library deletion cascades to.
//! One trait, one module per vendor; every call has a timeout; the API key is sealed at rest
//! and never shown, logged or answered back.
//!
//! | kind | connection test | a movie | a show | a season |
//! |---|---|---|---|---|
//! | Radarr (v3) | `GET /api/v3/system/status` | by TMDB id: `DELETE /api/v3/movie/{id}?deleteFiles=true` | - | - |
//! | Sonarr (v3) | `GET /api/v3/system/status` | - | by TVDB id: `DELETE /api/v3/series/{id}?deleteFiles=true` | season unmonitored (`PUT /api/v3/series/{id}`), then its files deleted |
//! | Seerr (v1) | `GET /api/v1/settings/about` | by TMDB id: `DELETE /api/v1/media/{id}` (can be requested again) | the same for the show | the requests for that season deleted |

pub mod admin;
pub mod http;
pub mod radarr;
pub mod seerr;
pub mod sonarr;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::media::library::{ExternalIds, ItemKind};

/// The longest one cascade step may take (several calls for a Sonarr season).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The kinds of integration. Names are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    Radarr,
    Sonarr,
    Seerr,
}

impl IntegrationKind {
    pub const ALL: [IntegrationKind; 3] = [Self::Radarr, Self::Sonarr, Self::Seerr];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Radarr => "radarr",
            Self::Sonarr => "sonarr",
            Self::Seerr => "seerr",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Radarr => "Radarr",
            Self::Sonarr => "Sonarr",
            Self::Seerr => "Seerr / Overseerr / Jellyseerr",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }

    /// The URL an instance usually has, for the form's placeholder.
    pub fn example_url(self) -> &'static str {
        match self {
            Self::Radarr => "http://192.168.1.10:7878",
            Self::Sonarr => "http://192.168.1.10:8989",
            Self::Seerr => "http://192.168.1.10:5055",
        }
    }
}

impl fmt::Display for IntegrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was deleted on the media server, as the integrations look it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A movie, a show, or a season (`season` set, `ids` of its show).
    pub kind: ItemKind,
    pub title: String,
    pub ids: ExternalIds,
    pub season: Option<i64>,
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Deleted,
    /// The instance does not have it.
    NotFound,
    /// Not asked: the step does not apply, or it is switched off (with why).
    Skipped(String),
    Failed(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::NotFound => "not_found",
            Self::Skipped(_) => "skipped",
            Self::Failed(_) => "failed",
        }
    }

    /// The words that go with it, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Skipped(why) | Self::Failed(why) => Some(why),
            Self::Deleted | Self::NotFound => None,
        }
    }

    /// One outcome for several instances of a kind: a failure wins, then a deletion, then
    /// "not found" (each instance's words kept, named when there are several).
    pub fn combine(outcomes: Vec<(String, Outcome)>) -> Outcome {
        let several = outcomes.len() > 1;
        let failures: Vec<String> = outcomes
            .iter()
            .filter_map(|(name, o)| match o {
                Outcome::Failed(why) if several => Some(format!("{name}: {why}")),
                Outcome::Failed(why) => Some(why.clone()),
                _ => None,
            })
            .collect();
        if !failures.is_empty() {
            return Outcome::Failed(failures.join("; "));
        }
        if outcomes.iter().any(|(_, o)| *o == Outcome::Deleted) {
            return Outcome::Deleted;
        }
        if outcomes.iter().any(|(_, o)| *o == Outcome::NotFound) {
            return Outcome::NotFound;
        }
        match outcomes.into_iter().next() {
            Some((_, skipped)) => skipped,
            None => Outcome::Skipped("none configured".to_owned()),
        }
    }
}

/// What every integration can do.
#[rocket::async_trait]
pub trait Integration: Send + Sync {
    fn kind(&self) -> IntegrationKind;

    /// Checks the URL and key; the app's version when they work.
    async fn test(&self) -> Result<String, String>;

    /// Removes what was deleted on the media server (best effort: never an error, an
    /// outcome).
    async fn remove(&self, target: &Target) -> Outcome;
}

/// A client for one instance.
pub fn connect(
    kind: IntegrationKind,
    url: &str,
    api_key: &str,
    verify_tls: bool,
) -> Result<Box<dyn Integration>, String> {
    let http = http::Http::new(url, api_key, verify_tls)?;
    Ok(match kind {
        IntegrationKind::Radarr => Box::new(radarr::Radarr { http }),
        IntegrationKind::Sonarr => Box::new(sonarr::Sonarr { http }),
        IntegrationKind::Seerr => Box::new(seerr::Seerr { http }),
    })
}

/// The words a connection test says for a failed call.
pub(crate) fn test_failure(kind: IntegrationKind, e: &http::CallError) -> String {
    let hint = match e {
        http::CallError::Unreachable(_) | http::CallError::Timeout(_) => {
            " Check the address and port, and that this container can reach it."
        }
        http::CallError::NotFound | http::CallError::Malformed(_) => {
            " Something answers there, but not this app: check the kind and the URL (with any URL base)."
        }
        _ => "",
    };
    format!("{}: {e}.{hint}", kind.label())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_instances_give_one_outcome() {
        let o = |v: &[(&str, Outcome)]| {
            Outcome::combine(v.iter().map(|(n, o)| ((*n).to_owned(), o.clone())).collect())
        };
        assert_eq!(o(&[("HD", Outcome::NotFound), ("4K", Outcome::Deleted)]), Outcome::Deleted);
        assert_eq!(o(&[("HD", Outcome::NotFound), ("4K", Outcome::NotFound)]), Outcome::NotFound);
        assert_eq!(
            o(&[("HD", Outcome::Deleted), ("4K", Outcome::Failed("down".into()))]),
            Outcome::Failed("4K: down".into())
        );
        assert_eq!(o(&[("HD", Outcome::Failed("down".into()))]), Outcome::Failed("down".into()));
        assert_eq!(o(&[]), Outcome::Skipped("none configured".into()));
    }
}
