//! Live sessions from the browser: stop one, and the posters of what is playing (fetched
//! through us, so the media server's token never reaches the browser).

use std::sync::Arc;

use askama::Template;
use rocket::State;
use rocket::http::{ContentType, Header};
use rocket::response::content::RawHtml;

use crate::auth::{Admin, CsrfForm, Viewer};
use crate::db::{Db, plays, servers};
use crate::error::{AppError, AppResult};
use crate::media::Image;
use crate::poller::control::Control;
use crate::web::htmx::HxRequest;
use crate::web::htmx::{Done, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, audit, render};

/// Longest message we send to a viewer.
const MAX_MESSAGE: usize = 200;

#[derive(Debug, rocket::FromForm)]
pub struct StopForm {
    play_id: i64,
    message: String,
}

#[derive(Template)]
#[template(path = "dashboard/stop.html")]
struct StopPage {
    layout: Layout,
    play_id: i64,
    label: String,
}

/// The stop form without JavaScript.
#[rocket::get("/sessions/<id>/stop")]
pub fn stop_page(
    _admin: Admin,
    layout: Layout,
    id: i64,
    control: &State<Arc<Control>>,
) -> AppResult<RawHtml<String>> {
    let view = control.live();
    let live = view.session(id).ok_or_else(|| AppError::not_found(format!("live session {id}")))?;
    let label = format!("{}: {}", live.session.user.name, live.session.item.title);
    render(&StopPage { layout: layout.nav("dashboard"), play_id: id, label })
}

#[derive(Template)]
#[template(path = "dashboard/_stopped.html")]
struct StoppedFragment {
    message: String,
}

/// Either the htmx fragment saying it worked, or a redirect to the dashboard.
#[derive(rocket::response::Responder)]
pub enum Stopped {
    Fragment(RawHtml<String>, Header<'static>, Header<'static>),
    Page(Done),
}

#[rocket::post("/sessions/terminate", data = "<form>")]
pub async fn terminate(
    admin: Admin,
    form: CsrfForm<StopForm>,
    control: &State<Arc<Control>>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Stopped> {
    let StopForm { play_id, message } = form.0;
    let message = message.trim();
    if message.chars().count() > MAX_MESSAGE {
        return Err(AppError::validation("message", format!("at most {MAX_MESSAGE} characters")));
    }
    let live = control.terminate(play_id, message).await?;
    let details = serde_json::json!({"user": live.session.user.name, "title": live.session.item.title, "server": live.server_name, "message": message});
    audit(db, &admin.0.actor(), "session.terminate", &format!("play:{play_id}"), details, ip.0)
        .await;
    if hx.htmx {
        let html = render(&StoppedFragment {
            message: format!(
                "Stopped {}'s stream of {}.",
                live.session.user.name, live.session.item.title
            ),
        })?;
        Ok(Stopped::Fragment(
            html,
            Header::new("HX-Retarget", crate::web::error::ERROR_SLOT),
            Header::new("HX-Reswap", "innerHTML"),
        ))
    } else {
        Ok(Stopped::Page(done(&hx, format!("{}/", layout.base))))
    }
}

/// An image answer, cached by the browser for an hour (posters do not change).
#[derive(rocket::response::Responder)]
pub struct Poster {
    body: Vec<u8>,
    content_type: ContentType,
    cache: Header<'static>,
}

/// Only raster images are passed on: an SVG from a media server could carry script.
fn poster(image: Image) -> AppResult<Poster> {
    let content_type = match image.content_type.split(';').next().map(str::trim) {
        Some("image/jpeg") => ContentType::JPEG,
        Some("image/png") => ContentType::PNG,
        Some("image/webp") => ContentType::WEBP,
        Some("image/gif") => ContentType::GIF,
        other => {
            return Err(AppError::Upstream {
                server: "media server".into(),
                message: format!("not a poster image ({})", other.unwrap_or("no type")),
            });
        }
    };
    Ok(Poster {
        body: image.bytes,
        content_type,
        cache: Header::new("Cache-Control", "private, max-age=3600"),
    })
}

#[rocket::get("/sessions/<id>/poster")]
pub async fn live_poster(
    viewer: Viewer,
    id: i64,
    control: &State<Arc<Control>>,
    db: &State<Db>,
) -> AppResult<Poster> {
    let view = control.live();
    let live = view
        .session(id)
        .filter(|s| s.user_id.is_some_and(|u| viewer.0.scope().allows(u)))
        .ok_or_else(|| AppError::not_found(format!("live session {id}")))?;
    let thumb = live.session.item.thumb.clone().ok_or_else(|| AppError::not_found("poster"))?;
    fetch_poster(db, control, live.server_id, &thumb, &live.server_name).await
}

#[rocket::get("/history/<id>/poster")]
pub async fn history_poster(
    viewer: Viewer,
    id: i64,
    control: &State<Arc<Control>>,
    db: &State<Db>,
) -> AppResult<Poster> {
    let play = db
        .read(move |conn| plays::get(conn, id))
        .await?
        .filter(|p| viewer.0.scope().allows(p.user_id))
        .ok_or_else(|| AppError::not_found(format!("play {id}")))?;
    let thumb = play.thumb.clone().ok_or_else(|| AppError::not_found("poster"))?;
    fetch_poster(db, control, play.server_id, &thumb, &play.server_name).await
}

pub async fn fetch_poster(
    db: &Db,
    control: &Control,
    server_id: i64,
    thumb: &str,
    server_name: &str,
) -> AppResult<Poster> {
    let server = db
        .read(move |conn| servers::get(conn, server_id))
        .await?
        .ok_or_else(|| AppError::not_found(format!("server {server_id}")))?;
    let client = control.registry.client(&server)?;
    let image = client.image(thumb).await.map_err(|e| e.for_server(server_name))?;
    poster(image)
}
