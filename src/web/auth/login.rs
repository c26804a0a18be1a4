//! Sign-in, first-run setup, the demo admin and sign-out.

use askama::Template;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{FromForm, Route};

use super::catchers::{encode, safe_next};
use super::{Ctx, CurrentSession, Reply, page};
use crate::auth::oidc::{self, settings as oidc_settings};
use crate::auth::{CsrfForm, accounts, session};
use crate::error::AppError;
use crate::web::layout::Layout;

pub fn routes() -> Vec<Route> {
    rocket::routes![login_page, login, setup_page, setup, demo, logout]
}

#[derive(Template)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub next: String,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub username: String,
    /// The password form is offered.
    pub local: bool,
    /// Text of the single sign-on button, when single sign-on is usable.
    pub oidc_button: Option<String>,
    pub demo: bool,
}

impl LoginPage {
    /// The page for this request, with the sign-in options in force.
    pub async fn build(ctx: &Ctx<'_>, layout: Layout, next: &str) -> Result<Self, AppError> {
        let settings = oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await?;
        let mut layout = layout;
        layout.csrf.clone_from(&ctx.csrf);
        Ok(Self {
            layout,
            next: next.to_owned(),
            error: None,
            notice: None,
            username: String::new(),
            local: oidc_settings::local_login_enabled(&settings, ctx.config),
            oidc_button: settings.usable().then(|| settings.button_text.clone()),
            demo: ctx.config.demo,
        })
    }

    pub fn oidc_href(&self) -> String {
        format!("{}/auth/oidc/login?next={}", self.layout.base, encode(&self.next))
    }
}

#[rocket::get("/login?<next>&<local>&<signed_out>")]
async fn login_page(
    ctx: Ctx<'_>,
    layout: Layout,
    next: Option<&str>,
    local: Option<bool>,
    signed_out: Option<bool>,
) -> Reply {
    if ctx.auth.needs_setup(ctx.db).await {
        return Reply::Redirect(Redirect::to(ctx.config.path("/setup")));
    }
    let next = safe_next(ctx.config, next);
    if layout.user.is_some() {
        return Reply::Redirect(Redirect::to(next));
    }
    let mut page_data = match LoginPage::build(&ctx, layout, &next).await {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let settings = match oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let wants_form = local == Some(true) || signed_out == Some(true);
    if settings.usable() && settings.auto_redirect && !wants_form {
        return Reply::Redirect(Redirect::to(page_data.oidc_href()));
    }
    if signed_out == Some(true) {
        page_data.notice = Some("You are signed out.".to_owned());
    }
    page(Status::Ok, &page_data)
}

#[derive(FromForm)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

#[rocket::post("/login", data = "<form>")]
async fn login(ctx: Ctx<'_>, layout: Layout, form: CsrfForm<LoginForm>) -> Reply {
    let form = form.0;
    let next = safe_next(ctx.config, form.next.as_deref());
    let mut page_data = match LoginPage::build(&ctx, layout, &next).await {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    page_data.username = form.username.trim().to_owned();
    if !page_data.local {
        page_data.error = Some("Password sign-in is turned off. Use single sign-on.".to_owned());
        return page(Status::Forbidden, &page_data);
    }
    match accounts::password_sign_in(ctx.db, ctx.auth, &form.username, &form.password, ctx.ip).await
    {
        Ok(user) => {
            start_session(
                &ctx,
                user.id,
                "password",
                session::Origin { ..ctx.origin.clone() },
                &next,
            )
            .await
        }
        Err(e) => {
            let status = e.status();
            let retry = match &e {
                AppError::TooManyRequests { retry_after, .. } => Some(*retry_after),
                _ => None,
            };
            if status.code >= 500 {
                return e.into();
            }
            page_data.error = Some(e.public_message());
            match page(status, &page_data) {
                Reply::Page(mut html) => {
                    html.retry_after = retry;
                    Reply::Page(html)
                }
                other => other,
            }
        }
    }
}

/// Starts a session, hands out its cookie, and goes to `next`.
pub async fn start_session(
    ctx: &Ctx<'_>,
    account_id: i64,
    method: &str,
    origin: session::Origin,
    next: &str,
) -> Reply {
    match session::create(ctx.db, account_id, method, origin).await {
        Ok(started) => {
            session::set_cookie(ctx.cookies, ctx.config, &started);
            Reply::Redirect(Redirect::to(next.to_owned()))
        }
        Err(e) => e.into(),
    }
}

#[derive(Template)]
#[template(path = "auth/setup.html")]
struct SetupPage {
    layout: Layout,
    error: Option<String>,
    error_field: String,
    username: String,
    /// Text of the single sign-on button, when single sign-on is configured.
    oidc_button: Option<String>,
    admin_group: String,
    demo: bool,
}

async fn setup_page_data(ctx: &Ctx<'_>, layout: Layout) -> Result<SetupPage, AppError> {
    let settings = oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await?;
    let mut layout = layout;
    layout.csrf.clone_from(&ctx.csrf);
    Ok(SetupPage {
        layout,
        error: None,
        error_field: String::new(),
        username: String::new(),
        oidc_button: settings.usable().then(|| settings.button_text.clone()),
        admin_group: settings.admin_group,
        demo: ctx.config.demo,
    })
}

#[rocket::get("/setup")]
async fn setup_page(ctx: Ctx<'_>, layout: Layout) -> Reply {
    if !ctx.auth.needs_setup(ctx.db).await {
        return Reply::Redirect(Redirect::to(ctx.config.path("/login")));
    }
    match setup_page_data(&ctx, layout).await {
        Ok(p) => page(Status::Ok, &p),
        Err(e) => e.into(),
    }
}

#[derive(FromForm)]
struct SetupForm {
    username: String,
    password: String,
    confirm: String,
}

#[rocket::post("/setup", data = "<form>")]
async fn setup(ctx: Ctx<'_>, layout: Layout, form: CsrfForm<SetupForm>) -> Reply {
    let form = form.0;
    let result = accounts::setup_admin(
        ctx.db,
        ctx.auth,
        &form.username,
        &form.password,
        &form.confirm,
        ctx.ip,
    )
    .await;
    match result {
        Ok(user) => {
            start_session(&ctx, user.id, "setup", ctx.origin.clone(), &ctx.config.path("/")).await
        }
        Err(e) if e.status().code < 500 => {
            let mut p = match setup_page_data(&ctx, layout).await {
                Ok(p) => p,
                Err(e) => return e.into(),
            };
            if let AppError::Validation { field, .. } = &e {
                p.error_field.clone_from(field);
            }
            p.error = Some(match &e {
                AppError::Validation { message, .. } => message.clone(),
                other => other.public_message(),
            });
            form.username.trim().clone_into(&mut p.username);
            page(e.status(), &p)
        }
        Err(e) => e.into(),
    }
}

#[derive(FromForm)]
struct DemoForm {
    next: Option<String>,
}

/// One click to the demo admin, offered only by `streamwarden demo`.
#[rocket::post("/auth/demo", data = "<form>")]
async fn demo(ctx: Ctx<'_>, form: CsrfForm<DemoForm>) -> Reply {
    if !ctx.config.demo {
        return AppError::not_found("page").into();
    }
    match accounts::demo_admin(ctx.db, ctx.auth, ctx.ip).await {
        Ok(user) => {
            let next = safe_next(ctx.config, form.0.next.as_deref());
            start_session(&ctx, user.id, "demo", ctx.origin.clone(), &next).await
        }
        Err(e) => e.into(),
    }
}

/// Ends this session; after single sign-on, also at the provider when it offers that.
#[rocket::post("/logout", data = "<_form>")]
async fn logout(
    ctx: Ctx<'_>,
    current: CurrentSession,
    _form: CsrfForm<crate::auth::NoFields>,
) -> Reply {
    let current = current.0;
    let db = ctx.db.clone();
    let actor = accounts::Actor::new(current.user.actor(), ctx.ip);
    let (id, account) = (current.id, current.user.id);
    let ended = db
        .write(move |c| {
            crate::db::sessions::delete(c, id)?;
            accounts::audit(c, &actor, "logout", Some(&format!("account:{account}")), None)
        })
        .await;
    if let Err(e) = ended {
        return e.into();
    }
    ctx.cookies.remove(session::cookie(ctx.config, session::SESSION_COOKIE, String::new(), None));
    let signed_out = ctx.config.path("/login?signed_out=true");
    if let (true, Some(sealed)) = (current.method == "oidc", &current.id_token_sealed)
        && let (Ok(settings), Ok(id_token)) = (
            oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await,
            ctx.secrets.open(SESSION_ID_TOKEN, sealed),
        )
    {
        let back = match &ctx.config.public_url {
            Some(url) => {
                format!("{}/login?signed_out=true", url.as_str().trim_end_matches('/'))
            }
            None => format!("{}{signed_out}", ctx.own_origin.as_deref().unwrap_or_default()),
        };
        if let Some(url) = oidc::logout_url(&settings, &id_token, &back).await {
            return Reply::Redirect(Redirect::to(url));
        }
    }
    Reply::Redirect(Redirect::to(signed_out))
}

/// Purpose of the sealed ID token kept with an OIDC session.
pub const SESSION_ID_TOKEN: &str = "sessions.id_token";
