//! Simulated Radarr, Sonarr (API v3) and Seerr (API v1) on loopback, for the demo and the
//! tests: each checks the API key, answers in the vendor's JSON shapes, changes its state
//! as the real app would, and records every request it receives.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::http::{self, Request, Response};
use crate::integrations::IntegrationKind;

/// A movie Radarr manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrMovie {
    pub id: i64,
    pub tmdb_id: i64,
    pub title: String,
}

/// A series Sonarr manages: seasons as (number, monitored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrSeries {
    pub id: i64,
    pub tvdb_id: i64,
    pub title: String,
    pub seasons: Vec<(i64, bool)>,
}

/// An episode file Sonarr has on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrFile {
    pub id: i64,
    pub series_id: i64,
    pub season_number: i64,
}

/// A title Seerr knows: its media record and the requests for it (id, seasons asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeerrMedia {
    pub id: i64,
    pub tmdb_id: i64,
    /// `movie` or `tv`.
    pub kind: String,
    pub requests: Vec<(i64, Vec<i64>)>,
}

/// One request received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The query as `k=v&k=v`, sorted.
    pub query: String,
    pub body: String,
    /// It carried the right `X-Api-Key`.
    pub key_ok: bool,
}

/// What a simulated app holds.
#[derive(Debug, Clone, Default)]
pub struct ArrState {
    pub movies: Vec<ArrMovie>,
    pub series: Vec<ArrSeries>,
    pub files: Vec<ArrFile>,
    pub media: Vec<SeerrMedia>,
    pub received: Vec<Received>,
    /// Answers 503 to everything.
    pub down: bool,
    /// Answers 500 to deletes.
    pub fail_deletes: bool,
}

impl ArrState {
    /// The requests that changed something (anything but GET).
    pub fn changes(&self) -> Vec<String> {
        self.received
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| {
                if r.query.is_empty() {
                    format!("{} {}", r.method, r.path)
                } else {
                    format!("{} {}?{}", r.method, r.path, r.query)
                }
            })
            .collect()
    }
}

/// A running simulated app.
pub struct FakeArr {
    pub kind: IntegrationKind,
    pub url: String,
    pub api_key: String,
    pub state: Arc<Mutex<ArrState>>,
    task: JoinHandle<()>,
}

impl Drop for FakeArr {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeArr {
    /// Starts an app of `kind` holding `state`, with key `api_key`.
    pub async fn start(
        kind: IntegrationKind,
        api_key: &str,
        state: ArrState,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(state));
        let (key, inside) = (api_key.to_owned(), Arc::clone(&shared));
        let (addr, task) = http::serve(move |req| {
            let (key, state) = (key.clone(), Arc::clone(&inside));
            async move { respond(kind, &key, &state, &req) }
        })
        .await?;
        Ok(Self {
            kind,
            url: format!("http://{addr}"),
            api_key: api_key.to_owned(),
            state: shared,
            task,
        })
    }

    pub fn state(&self) -> MutexGuard<'_, ArrState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn respond(kind: IntegrationKind, key: &str, state: &Mutex<ArrState>, req: &Request) -> Response {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let key_ok = req.header("X-Api-Key") == Some(key);
    let mut query: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    query.sort();
    state.received.push(Received {
        method: req.method.clone(),
        path: req.path.clone(),
        query: query.join("&"),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        key_ok,
    });
    if state.down {
        return Response::new(503, "text/plain", "Service Unavailable");
    }
    if !key_ok {
        return match kind {
            IntegrationKind::Seerr => Response::new(
                403,
                "application/json",
                r#"{"message":"You do not have permission to access this endpoint."}"#,
            ),
            _ => Response::new(401, "application/json", r#"{"error":"Unauthorized"}"#),
        };
    }
    if state.fail_deletes && req.method == "DELETE" {
        return Response::new(
            500,
            "application/json",
            r#"{"message":"Access to the path is denied."}"#,
        );
    }
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match kind {
        IntegrationKind::Radarr => radarr(&mut state, req, &segments),
        IntegrationKind::Sonarr => sonarr(&mut state, req, &segments),
        IntegrationKind::Seerr => seerr(&mut state, req, &segments),
    }
}

fn number(req: &Request, name: &str) -> Option<i64> {
    req.query(name).and_then(|v| v.parse().ok())
}

fn radarr(state: &mut ArrState, req: &Request, segments: &[&str]) -> Response {
    match (req.method.as_str(), segments) {
        ("GET", ["api", "v3", "system", "status"]) => Response::json(
            &json!({"appName": "Radarr", "instanceName": "Radarr", "version": "5.14.0.9383", "urlBase": ""}),
        ),
        ("GET", ["api", "v3", "movie"]) => {
            let tmdb = number(req, "tmdbId");
            let found: Vec<Value> = state
                .movies
                .iter()
                .filter(|m| tmdb.is_none_or(|t| t == m.tmdb_id))
                .map(|m| json!({"id": m.id, "title": m.title, "tmdbId": m.tmdb_id, "monitored": true, "hasFile": true}))
                .collect();
            Response::json(&Value::Array(found))
        }
        ("DELETE", ["api", "v3", "movie", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            match state.movies.iter().position(|m| m.id == id) {
                Some(i) => {
                    state.movies.remove(i);
                    Response::json(&json!({}))
                }
                None => Response::new(404, "application/json", r#"{"message":"NotFound"}"#),
            }
        }
        _ => Response::new(404, "application/json", r#"{"message":"NotFound"}"#),
    }
}

fn series_json(s: &ArrSeries) -> Value {
    json!({
        "id": s.id, "title": s.title, "tvdbId": s.tvdb_id, "monitored": true, "seasonFolder": true,
        "qualityProfileId": 1, "path": format!("/tv/{}", s.title),
        "seasons": s.seasons.iter().map(|(n, m)| json!({"seasonNumber": n, "monitored": m, "statistics": {"episodeFileCount": 1}})).collect::<Vec<_>>(),
    })
}

fn sonarr(state: &mut ArrState, req: &Request, segments: &[&str]) -> Response {
    let not_found = || Response::new(404, "application/json", r#"{"message":"NotFound"}"#);
    match (req.method.as_str(), segments) {
        ("GET", ["api", "v3", "system", "status"]) => Response::json(
            &json!({"appName": "Sonarr", "instanceName": "Sonarr", "version": "4.0.10.2544", "urlBase": ""}),
        ),
        ("GET", ["api", "v3", "series"]) => {
            let tvdb = number(req, "tvdbId");
            let found: Vec<Value> = state
                .series
                .iter()
                .filter(|s| tvdb.is_none_or(|t| t == s.tvdb_id))
                .map(series_json)
                .collect();
            Response::json(&Value::Array(found))
        }
        ("GET", ["api", "v3", "series", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            state
                .series
                .iter()
                .find(|s| s.id == id)
                .map_or_else(not_found, |s| Response::json(&series_json(s)))
        }
        ("PUT", ["api", "v3", "series", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return Response::new(400, "application/json", r#"{"message":"invalid body"}"#);
            };
            let Some(series) = state.series.iter_mut().find(|s| s.id == id) else {
                return not_found();
            };
            for season in body["seasons"].as_array().into_iter().flatten() {
                if let (Some(n), Some(m)) =
                    (season["seasonNumber"].as_i64(), season["monitored"].as_bool())
                    && let Some(entry) = series.seasons.iter_mut().find(|(number, _)| *number == n)
                {
                    entry.1 = m;
                }
            }
            Response { status: 202, ..Response::json(&series_json(series)) }
        }
        ("DELETE", ["api", "v3", "series", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            match state.series.iter().position(|s| s.id == id) {
                Some(i) => {
                    state.series.remove(i);
                    state.files.retain(|f| f.series_id != id);
                    Response::json(&json!({}))
                }
                None => not_found(),
            }
        }
        ("GET", ["api", "v3", "episodefile"]) => {
            let series = number(req, "seriesId");
            let files: Vec<Value> = state
                .files
                .iter()
                .filter(|f| series.is_none_or(|s| s == f.series_id))
                .map(|f| json!({"id": f.id, "seriesId": f.series_id, "seasonNumber": f.season_number, "relativePath": format!("Season {}/{}.mkv", f.season_number, f.id), "size": 2_000_000_000_i64}))
                .collect();
            Response::json(&Value::Array(files))
        }
        ("DELETE", ["api", "v3", "episodefile", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            match state.files.iter().position(|f| f.id == id) {
                Some(i) => {
                    state.files.remove(i);
                    Response::json(&json!({}))
                }
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn seerr(state: &mut ArrState, req: &Request, segments: &[&str]) -> Response {
    let not_found = || Response::new(404, "application/json", r#"{"message":"Not found"}"#);
    match (req.method.as_str(), segments) {
        ("GET", ["api", "v1", "settings", "about"]) => Response::json(
            &json!({"version": "2.7.3", "totalRequests": state.media.iter().map(|m| m.requests.len()).sum::<usize>(), "totalMediaItems": state.media.len(), "tz": "Etc/UTC", "appDataPath": "/app/config"}),
        ),
        ("GET", ["api", "v1", kind @ ("movie" | "tv"), tmdb]) => {
            let Ok(tmdb) = tmdb.parse::<i64>() else { return not_found() };
            let media = state.media.iter().find(|m| m.tmdb_id == tmdb && m.kind == *kind);
            let mut details = json!({"id": tmdb, "name": format!("TMDB {tmdb}")});
            if let Some(m) = media {
                details["mediaInfo"] = json!({
                    "id": m.id, "tmdbId": m.tmdb_id, "status": 5, "mediaType": m.kind,
                    "requests": m.requests.iter().map(|(id, seasons)| json!({"id": id, "status": 2, "type": m.kind,
                        "seasons": seasons.iter().map(|n| json!({"id": id * 100 + n, "seasonNumber": n, "status": 2})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                });
            }
            Response::json(&details)
        }
        ("DELETE", ["api", "v1", "media", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            match state.media.iter().position(|m| m.id == id) {
                Some(i) => {
                    state.media.remove(i);
                    Response::empty(204)
                }
                None => not_found(),
            }
        }
        ("DELETE", ["api", "v1", "request", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            let mut found = false;
            for media in &mut state.media {
                let before = media.requests.len();
                media.requests.retain(|(r, _)| *r != id);
                found |= media.requests.len() != before;
            }
            if found { Response::empty(204) } else { not_found() }
        }
        _ => not_found(),
    }
}
