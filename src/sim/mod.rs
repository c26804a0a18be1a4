//! Simulated Plex, Jellyfin and Emby servers on loopback, speaking the vendors' exact
//! formats, driven by a [`World`]. The demo runs them with a scenario that never ends; the
//! integration tests drive the world step by step.

pub mod arr;
pub mod demo;
pub mod formats;
pub mod http;
pub mod library;
pub mod push;
pub mod scenario;
pub mod world;

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::media::ServerKind;
use http::{Request, Response};
pub use world::{Action, SimDevice, SimItem, SimPush, World};

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
    /// Bumped by [`Cluster::with`]: push connections tell what changed at once.
    changed: watch::Sender<u64>,
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
        let changed = watch::Sender::new(0);
        for (index, (kind, name, token)) in servers.into_iter().enumerate() {
            let shared = Arc::clone(&world);
            let notifier = changed.clone();
            let (addr, task) = http::serve(move |req| {
                let shared = Arc::clone(&shared);
                let watcher = notifier.subscribe();
                async move {
                    let delay = delay_of(&shared, index, &req);
                    let response = match push_endpoint(&shared, index, &req, watcher) {
                        Some(response) => response,
                        None => respond(&shared, index, &req),
                    };
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
        Ok(Self { world, endpoints, changed, tasks })
    }

    /// Changes the world (and tells the push connections at once).
    pub fn with<T>(&self, change: impl FnOnce(&mut World) -> T) -> T {
        let result = change(&mut lock(&self.world));
        self.changed.send_modify(|n| *n += 1);
        result
    }

    /// For whoever changes the world directly (the demo's story): call after a change.
    pub fn notifier(&self) -> watch::Sender<u64> {
        self.changed.clone()
    }
}

/// The push endpoints (which take the connection over), after the same checks as every
/// request; `None` for everything else.
fn push_endpoint(
    world: &SharedWorld,
    index: usize,
    req: &Request,
    changed: watch::Receiver<u64>,
) -> Option<Response> {
    let (kind, token, push) = {
        let w = lock(world);
        let s = &w.servers[index];
        (s.kind, s.token.clone(), s.push.clone())
    };
    let path = req.path.as_str();
    let wanted = match kind {
        ServerKind::Plex => path == "/:/eventsource/notifications",
        ServerKind::Jellyfin => matches!(path, "/socket" | "/api/sse/events"),
        ServerKind::Emby => matches!(path, "/embywebsocket" | "/emby/sse/events"),
    };
    if !wanted || req.method != "GET" {
        return None;
    }
    let down = lock(world).servers[index].down;
    if down {
        return Some(Response::new(503, "text/plain", "Service Unavailable"));
    }
    let given = match kind {
        ServerKind::Plex => req.header("X-Plex-Token").or_else(|| req.query("X-Plex-Token")),
        ServerKind::Emby => req.query("api_key").or_else(|| req.header("X-Emby-Token")),
        ServerKind::Jellyfin => req
            .header("Authorization")
            .and_then(|a| a.split("Token=\"").nth(1))
            .and_then(|t| t.split('"').next())
            .or_else(|| req.query("api_key")),
    };
    if given != Some(token.as_str()) {
        return Some(Response::new(401, "text/plain", "Unauthorized"));
    }
    let plugin = path.ends_with("/sse/events");
    if !push.enabled || (plugin && !push.sse_plugin) {
        return Some(Response::empty(404));
    }
    let shared = Arc::clone(world);
    Some(match (kind, plugin) {
        (ServerKind::Plex, _) => push::plex_events(shared, index, changed),
        (_, true) => push::plugin_events(shared, index, changed, kind == ServerKind::Emby),
        (_, false) => push::websocket(shared, index, changed, req),
    })
}

fn lock(world: &SharedWorld) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How late to answer `req`: session listings wait `sessions_delay_ms` (and are counted).
fn delay_of(world: &SharedWorld, index: usize, req: &Request) -> u64 {
    let listing =
        req.method == "GET" && matches!(req.path.as_str(), "/status/sessions" | "/Sessions");
    let mut world = lock(world);
    let server = &mut world.servers[index];
    server.requests += 1;
    if !listing {
        return 0;
    }
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
    if server.hollow_listing && req.method == "GET" && req.path == "/status/sessions" {
        let size = world.plays_on(index).count();
        return xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"{size}\"/>\n"
        ));
    }
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
        ("GET", "/library/sections") => xml(library::plex_sections(&server.libraries)),
        ("GET", path) if path.starts_with("/library/sections/") && path.ends_with("/all") => {
            let key = &path["/library/sections/".len()..path.len() - "/all".len()];
            let Some(at) = server.libraries.iter().position(|l| l.key == key) else {
                return Response::empty(404);
            };
            // Plex reads paging from the query or from headers.
            let param =
                |name: &str| req.query(name).or_else(|| req.header(name)).map(str::to_owned);
            let start = param("X-Plex-Container-Start").and_then(|s| s.parse().ok()).unwrap_or(0);
            let size = param("X-Plex-Container-Size").and_then(|s| s.parse().ok());
            let plex_type = req.query("type").unwrap_or("1");
            let guids = req.query("includeGuids") == Some("1");
            let body = library::plex_all(&server.libraries[at], plex_type, start, size, guids);
            let server = &mut world.servers[index];
            if let Some(movie) = server.appears_while_listing.take() {
                server.libraries[at].movies.push(movie);
            }
            xml(body)
        }
        ("DELETE", path) if path.starts_with("/library/metadata/") => {
            let id = path["/library/metadata/".len()..].to_owned();
            delete_item(world, index, &id, 200)
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
        ("GET", ["Library", "VirtualFolders"]) if !emby => {
            Response::json(&library::jellyfin_folders(&server.libraries, false))
        }
        ("GET", ["Library", "VirtualFolders", "Query"]) if emby => {
            Response::json(&library::jellyfin_folders(&server.libraries, true))
        }
        ("GET", ["Items"]) => jellyfin_items(world, index, req),
        ("DELETE", ["Items", id]) => {
            let id = (*id).to_owned();
            delete_item(world, index, &id, if emby { 200 } else { 204 })
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

/// A library item deleted through the API (`ok`: the vendor's success status).
fn delete_item(world: &mut World, index: usize, id: &str, ok: u16) -> Response {
    let server = &mut world.servers[index];
    if server.fail_deletes {
        return Response::new(
            500,
            "text/plain",
            "Internal Server Error: the file could not be removed",
        );
    }
    match library::delete(&mut server.libraries, id) {
        library::SimDelete::Deleted => {
            world.actions.push(Action::Deleted { server: index, id: id.to_owned() });
            Response::empty(ok)
        }
        library::SimDelete::NotFound => Response::empty(404),
    }
}

/// `GET /Items`: a library's items, paged; query names are case-insensitive, as
/// ASP.NET (Jellyfin) reads them.
fn jellyfin_items(world: &mut World, index: usize, req: &Request) -> Response {
    let param = |name: &str| {
        req.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    let server = &world.servers[index];
    let Some(library) =
        param("ParentId").and_then(|p| server.libraries.iter().position(|l| l.key == p))
    else {
        return Response::json(&json!({ "Items": [], "TotalRecordCount": 0, "StartIndex": 0 }));
    };
    let admin = server.users.iter().find(|u| u.admin).map(|u| u.id.as_str());
    let with_user = param("UserId").is_some() && param("UserId") == admin;
    let types: Vec<&str> =
        param("IncludeItemTypes").map(|t| t.split(',').collect()).unwrap_or_default();
    let rows = library::jellyfin_items(&server.libraries[library], &types, with_user);
    let start: usize = param("StartIndex").and_then(|s| s.parse().ok()).unwrap_or(0);
    let limit: usize = param("Limit").and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
    let total = if server.libraries[library].kind().has_items() {
        rows.len()
    } else {
        usize::try_from(server.libraries[library].count).unwrap_or(0)
    };
    let page: Vec<serde_json::Value> = rows.into_iter().skip(start).take(limit).collect();
    let body = json!({ "Items": page, "TotalRecordCount": total, "StartIndex": start });
    let server = &mut world.servers[index];
    if let Some(movie) = server.appears_while_listing.take() {
        server.libraries[library].movies.push(movie);
    }
    Response::json(&body)
}
