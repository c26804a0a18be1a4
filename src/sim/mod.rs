//! Simulated Plex, Jellyfin and Emby servers on loopback, speaking the vendors' exact
//! formats, driven by a [`World`]. The demo runs them with a scenario that never ends; the
//! integration tests drive the world step by step.

pub mod demo;
pub mod formats;
pub mod http;
pub mod scenario;
pub mod world;

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::task::JoinHandle;

use crate::media::ServerKind;
use http::{Request, Response};
pub use world::{Action, SimDevice, SimItem, World};

/// The world, shared by the servers and whoever drives it.
pub type SharedWorld = Arc<Mutex<World>>;

/// One running simulated server.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub index: usize,
    pub kind: ServerKind,
    pub name: String,
    pub url: String,
    pub token: String,
}

/// Every server of a world, listening.
pub struct Cluster {
    pub world: SharedWorld,
    pub endpoints: Vec<Endpoint>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Cluster {
    /// Starts one HTTP server per server of `world`.
    pub async fn start(world: World) -> std::io::Result<Self> {
        let world = Arc::new(Mutex::new(world));
        let servers: Vec<(ServerKind, String, String)> = lock(&world)
            .servers
            .iter()
            .map(|s| (s.kind, s.name.clone(), s.token.clone()))
            .collect();
        let mut endpoints = Vec::new();
        let mut tasks = Vec::new();
        for (index, (kind, name, token)) in servers.into_iter().enumerate() {
            let shared = Arc::clone(&world);
            let (addr, task) = http::serve(move |req| {
                let shared = Arc::clone(&shared);
                async move {
                    let delay = delay_of(&shared, index, &req);
                    let response = respond(&shared, index, &req);
                    if delay > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    }
                    response
                }
            })
            .await?;
            endpoints.push(Endpoint { index, kind, name, url: format!("http://{addr}"), token });
            tasks.push(task);
        }
        Ok(Self { world, endpoints, tasks })
    }

    /// Changes the world.
    pub fn with<T>(&self, change: impl FnOnce(&mut World) -> T) -> T {
        change(&mut lock(&self.world))
    }
}

fn lock(world: &SharedWorld) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How late to answer `req`: session listings wait `sessions_delay_ms` (and are counted).
fn delay_of(world: &SharedWorld, index: usize, req: &Request) -> u64 {
    let listing =
        req.method == "GET" && matches!(req.path.as_str(), "/status/sessions" | "/Sessions");
    if !listing {
        return 0;
    }
    let mut world = lock(world);
    let server = &mut world.servers[index];
    server.session_polls += 1;
    server.sessions_delay_ms
}

/// Answers one request to server `index`, as its vendor would.
fn respond(world: &SharedWorld, index: usize, req: &Request) -> Response {
    let mut world = lock(world);
    let server = world.servers[index].clone();
    if server.down {
        return Response::new(503, "text/plain", "Service Unavailable");
    }
    if server.garbage {
        return Response::new(200, "application/json", "{\"this is\": not what you expected");
    }
    match server.kind {
        ServerKind::Plex => plex(&mut world, index, req),
        ServerKind::Jellyfin | ServerKind::Emby => jellyfin(&mut world, index, req),
    }
}

fn plex(world: &mut World, index: usize, req: &Request) -> Response {
    let server = &world.servers[index];
    let xml = |body: String| Response::new(200, "text/xml;charset=utf-8", body);
    if req.path == "/identity" {
        return xml(formats::plex_identity(server));
    }
    let token = req.header("X-Plex-Token").or_else(|| req.query("X-Plex-Token"));
    if token != Some(server.token.as_str()) {
        return Response::new(
            401,
            "text/html",
            "<html><head><title>Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>",
        );
    }
    let wants_json = req.header("Accept").is_some_and(|a| a.contains("json"));
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => xml(formats::plex_identity(server)),
        ("GET", "/accounts") => xml(formats::plex_accounts(server)),
        ("GET", "/status/sessions") if wants_json => {
            Response::json(&formats::plex_sessions_json(world, index))
        }
        ("GET", "/status/sessions") => xml(formats::plex_sessions_xml(world, index)),
        ("GET" | "POST", "/status/sessions/terminate") => {
            if !server.plex_pass {
                return Response::empty(401);
            }
            let Some(id) = req.query("sessionId").filter(|s| !s.is_empty()) else {
                return Response::empty(403);
            };
            let reason = req.query("reason").unwrap_or_default().to_owned();
            if world.terminate(index, id, &reason) {
                Response::empty(200)
            } else {
                Response::empty(404)
            }
        }
        ("GET", path) if path.starts_with("/library/metadata/") => {
            let rest = &path["/library/metadata/".len()..];
            match rest.split_once('/') {
                Some((id, _thumb)) => Response::new(200, "image/png", formats::poster_png(id)),
                None => {
                    formats::plex_metadata(world, rest).map_or_else(|| Response::empty(404), xml)
                }
            }
        }
        _ => Response::empty(404),
    }
}

fn jellyfin(world: &mut World, index: usize, req: &Request) -> Response {
    let server = &world.servers[index];
    let emby = server.kind == ServerKind::Emby;
    if req.path == "/System/Info/Public" {
        return Response::json(&json!({ "ServerName": server.name, "Id": server.machine_id }));
    }
    // Jellyfin: `Authorization: MediaBrowser ..., Token="..."`; Emby: `X-Emby-Token`.
    let token = if emby {
        req.header("X-Emby-Token").or_else(|| req.query("api_key")).map(str::to_owned)
    } else {
        req.header("Authorization")
            .and_then(|a| a.split("Token=\"").nth(1))
            .and_then(|t| t.split('"').next())
            .map(str::to_owned)
    };
    if token.as_deref() != Some(server.token.as_str()) {
        return Response::new(401, "text/plain", "Unauthorized");
    }
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["System", "Info"]) => Response::json(&formats::jellyfin_system_info(server)),
        ("GET", ["Sessions"]) => Response::json(&formats::jellyfin_sessions(world, index)),
        ("GET", ["Users"]) if !emby => {
            Response::json(&serde_json::Value::Array(formats::jellyfin_users(server)))
        }
        ("GET", ["Users", "Query"]) if emby => {
            let users = formats::jellyfin_users(server);
            Response::json(&json!({ "Items": users, "TotalRecordCount": users.len() }))
        }
        ("GET", ["Items", id, "Images", "Primary"]) => {
            Response::new(200, "image/png", formats::poster_png(id))
        }
        ("POST", ["Sessions", id, "Playing", "Stop"]) => {
            if emby {
                // Emby wants a PlaystateRequest body.
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                if body["Command"] != "Stop" {
                    return Response::new(400, "text/plain", "PlaystateRequest body required");
                }
            }
            let controllable = world.play(id).is_some_and(|p| p.can_control);
            match world.play(id) {
                None => Response::empty(404),
                Some(_) if !controllable => Response::empty(400),
                Some(_) => {
                    world.terminate(index, id, "");
                    Response::empty(204)
                }
            }
        }
        ("POST", ["Sessions", id, "Message"]) => {
            let (header, text) = if emby {
                (req.query("Header").map(str::to_owned), req.query("Text").map(str::to_owned))
            } else {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                (
                    body["Header"].as_str().map(str::to_owned),
                    body["Text"].as_str().map(str::to_owned),
                )
            };
            let Some(text) = text else {
                return Response::new(400, "text/plain", "Text is required");
            };
            if world.play(id).is_none() {
                return Response::empty(404);
            }
            world.actions.push(Action::Message {
                server: index,
                session_key: (*id).to_owned(),
                header: header.unwrap_or_default(),
                text,
            });
            Response::empty(204)
        }
        _ => Response::empty(404),
    }
}
