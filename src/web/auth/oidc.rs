//! Single sign-on: off to the provider, and back.

use rocket::Route;
use rocket::http::Status;
use rocket::response::Redirect;

use super::catchers::safe_next;
use super::login::{LoginPage, SESSION_ID_TOKEN, start_session};
use super::{Ctx, Reply, page};
use crate::auth::oidc::{self, Callback, OidcError, link, settings as oidc_settings};
use crate::auth::{accounts, session};
use crate::web::layout::Layout;

pub fn routes() -> Vec<Route> {
    rocket::routes![start, callback]
}

/// The login page again, showing why single sign-on failed.
async fn failed(ctx: &Ctx<'_>, layout: Layout, e: &OidcError) -> Reply {
    tracing::info!(code = e.code, error = %e.message, "single sign-on failed");
    let mut p = match LoginPage::build(ctx, layout, &ctx.config.path("/")).await {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    p.error = Some(e.message.clone());
    let status = match e.code {
        "not_allowed" | "no_account" | "disabled" => Status::Forbidden,
        "unreachable" | "untrusted_certificate" | "discovery" => Status::BadGateway,
        "internal" => Status::InternalServerError,
        _ => Status::BadRequest,
    };
    page(status, &p)
}

#[rocket::get("/auth/oidc/login?<next>")]
async fn start(ctx: Ctx<'_>, layout: Layout, next: Option<&str>) -> Reply {
    let settings = match oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    if !settings.usable() {
        let e = OidcError::new(
            "not_configured",
            "Single sign-on is not set up. An admin can set it up in Settings → Sign-in.",
        );
        return failed(&ctx, layout, &e).await;
    }
    let next = safe_next(ctx.config, next);
    let (redirect_uri, _) = oidc_settings::redirect_uri(ctx.config, ctx.own_origin.as_deref());
    match oidc::start(ctx.db, &settings, &redirect_uri, &next).await {
        Ok(started) => {
            ctx.cookies.add(session::cookie(
                ctx.config,
                oidc::FLOW_COOKIE,
                started.binding,
                Some(oidc::FLOW_TTL),
            ));
            Reply::Redirect(Redirect::to(started.authorize_url))
        }
        Err(e) => failed(&ctx, layout, &e).await,
    }
}

#[rocket::get("/auth/oidc/callback?<code>&<state>&<error>&<error_description>")]
async fn callback(
    ctx: Ctx<'_>,
    layout: Layout,
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
) -> Reply {
    let settings = match oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    if !settings.usable() {
        let e = OidcError::new("not_configured", "Single sign-on is not set up.");
        return failed(&ctx, layout, &e).await;
    }
    let (redirect_uri, _) = oidc_settings::redirect_uri(ctx.config, ctx.own_origin.as_deref());
    let binding = ctx.cookies.get(oidc::FLOW_COOKIE).map(|c| c.value().to_owned());
    ctx.cookies.remove(session::cookie(ctx.config, oidc::FLOW_COOKIE, String::new(), None));
    let callback = Callback { code, state, error, error_description };
    let identity =
        match oidc::finish(ctx.db, &settings, &redirect_uri, callback, binding.as_deref()).await {
            Ok(identity) => identity,
            Err(e) => {
                let actor = accounts::Actor::new("oidc:unknown", ctx.ip);
                let code = e.code;
                let _ = ctx
                    .db
                    .write(move |c| {
                        accounts::audit(
                            c,
                            &actor,
                            "login.failed",
                            None,
                            Some(serde_json::json!({"method": "oidc", "reason": code})),
                        )
                    })
                    .await;
                return failed(&ctx, layout, &e).await;
            }
        };
    let setup = ctx.auth.needs_setup(ctx.db).await;
    match link::account_for(ctx.db, &settings, &identity, setup, ctx.ip).await {
        Ok(user) => {
            if user.is_admin() {
                ctx.auth.needs_setup(ctx.db).await;
            }
            let origin = session::Origin {
                id_token_sealed: Some(ctx.secrets.seal(SESSION_ID_TOKEN, &identity.id_token)),
                ..ctx.origin.clone()
            };
            let next = safe_next(ctx.config, Some(&identity.next));
            start_session(&ctx, user.id, "oidc", origin, &next).await
        }
        Err(e) => failed(&ctx, layout, &e).await,
    }
}
