//! The signed-in user's own account: password, sessions, sign out everywhere.

use askama::Template;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{FromForm, Route};

use super::{Ctx, CurrentSession, Reply, page, when};
use crate::auth::{CsrfForm, Viewer, accounts};
use crate::db::{accounts as rows, sessions};
use crate::error::{AppError, AppResult};
use crate::web::layout::Layout;

pub fn routes() -> Vec<Route> {
    rocket::routes![show, change_password, sign_out_everywhere]
}

/// One session in the list.
pub struct SessionLine {
    pub current: bool,
    pub method: String,
    pub started: String,
    pub last_seen: String,
    pub ip: String,
    pub browser: String,
}

#[derive(Template)]
#[template(path = "auth/account.html")]
struct AccountPage {
    layout: Layout,
    notice: Option<String>,
    error: Option<String>,
    error_field: String,
    has_password: bool,
    sso: bool,
    media_user: Option<String>,
    sessions: Vec<SessionLine>,
}

async fn build(ctx: &Ctx<'_>, layout: Layout, current: &CurrentSession) -> AppResult<AccountPage> {
    let (id, session_id) = (current.0.user.id, current.0.id);
    let (account, list, media) = ctx
        .db
        .read(move |c| {
            let account = rows::by_id(c, id)?.ok_or_else(|| AppError::not_found("account"))?;
            let media = match account.media_user_id {
                Some(m) => rows::media_users(c)?
                    .into_iter()
                    .find(|(mid, _, _)| *mid == m)
                    .map(|(_, n, s)| format!("{n} on {s}")),
                None => None,
            };
            Ok((account, sessions::for_account(c, id)?, media))
        })
        .await?;
    Ok(AccountPage {
        layout: layout.nav("account"),
        notice: None,
        error: None,
        error_field: String::new(),
        has_password: account.password_hash.is_some(),
        sso: account.oidc_subject.is_some(),
        media_user: media,
        sessions: list
            .into_iter()
            .map(|s| SessionLine {
                current: s.id == session_id,
                method: s.method,
                started: when(s.created_at),
                last_seen: when(s.last_seen_at),
                ip: s.ip.unwrap_or_default(),
                browser: s.user_agent.unwrap_or_default(),
            })
            .collect(),
    })
}

#[rocket::get("/account?<saved>")]
async fn show(
    ctx: Ctx<'_>,
    _viewer: Viewer,
    layout: Layout,
    current: CurrentSession,
    saved: Option<&str>,
) -> Reply {
    match build(&ctx, layout, &current).await {
        Ok(mut p) => {
            p.notice = (saved == Some("password")).then(|| {
                "Your password was changed. Your other sessions were signed out.".to_owned()
            });
            page(Status::Ok, &p)
        }
        Err(e) => e.into(),
    }
}

#[derive(FromForm)]
struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

#[rocket::post("/account/password", data = "<form>")]
async fn change_password(
    ctx: Ctx<'_>,
    viewer: Viewer,
    layout: Layout,
    current: CurrentSession,
    form: CsrfForm<PasswordForm>,
) -> Reply {
    let f = form.0;
    let actor = accounts::Actor::new(viewer.0.actor(), ctx.ip);
    let result = accounts::change_own_password(
        ctx.db,
        ctx.auth,
        actor,
        &viewer.0,
        current.0.id,
        &f.current,
        &f.password,
        &f.confirm,
    )
    .await;
    match result {
        Ok(()) => Reply::Redirect(Redirect::to(ctx.config.path("/account?saved=password"))),
        Err(AppError::Validation { field, message }) => match build(&ctx, layout, &current).await {
            Ok(mut p) => {
                p.error = Some(message);
                p.error_field = field;
                page(Status::BadRequest, &p)
            }
            Err(e) => e.into(),
        },
        Err(e) => e.into(),
    }
}

#[rocket::post("/account/sign-out-everywhere", data = "<_form>")]
async fn sign_out_everywhere(
    ctx: Ctx<'_>,
    viewer: Viewer,
    _form: CsrfForm<crate::auth::NoFields>,
) -> Reply {
    let actor = accounts::Actor::new(viewer.0.actor(), ctx.ip);
    match accounts::sign_out_everywhere(ctx.db, actor, viewer.0.id).await {
        Ok(_) => {
            ctx.cookies.remove(crate::auth::session::cookie(
                ctx.config,
                crate::auth::session::SESSION_COOKIE,
                String::new(),
                None,
            ));
            Reply::Redirect(Redirect::to(ctx.config.path("/login?signed_out=true")))
        }
        Err(e) => e.into(),
    }
}
