//! Settings → Accounts: who can sign in, with which role and linked media user.

use askama::Template;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{FromForm, Route};

use super::{Ctx, Reply, page, when_opt};
use crate::auth::accounts::{self, Actor, NewAccountInput};
use crate::auth::{Admin, CsrfForm, Role};
use crate::db::accounts as rows;
use crate::error::{AppError, AppResult};
use crate::web::layout::Layout;

pub fn routes() -> Vec<Route> {
    rocket::routes![list, create, update, reset_password, disable, enable, delete, unlink_oidc]
}

pub struct AccountLine {
    pub id: i64,
    pub username: String,
    pub role: &'static str,
    pub media_user_id: Option<i64>,
    pub methods: String,
    pub disabled: bool,
    pub sso: bool,
    pub last_login: String,
    pub is_me: bool,
}

pub struct MediaUserOption {
    pub id: i64,
    pub label: String,
}

/// What the create form held, shown again after an error.
#[derive(Default)]
pub struct Draft {
    pub username: String,
    pub role: String,
    pub media_user_id: Option<i64>,
}

#[derive(Template)]
#[template(path = "settings/accounts.html")]
struct AccountsPage {
    layout: Layout,
    tab: &'static str,
    accounts: Vec<AccountLine>,
    media_users: Vec<MediaUserOption>,
    notice: Option<String>,
    error: Option<String>,
    error_field: String,
    draft: Draft,
}

async fn build(ctx: &Ctx<'_>, layout: Layout, me: i64) -> AppResult<AccountsPage> {
    let (all, media) = ctx.db.read(|c| Ok((rows::all(c)?, rows::media_users(c)?))).await?;
    let accounts = all
        .iter()
        .map(|a| AccountLine {
            id: a.id,
            username: a.username.clone(),
            role: a.role.as_str(),
            media_user_id: a.media_user_id,
            methods: match (a.password_hash.is_some(), a.oidc_subject.is_some()) {
                (true, true) => "password, single sign-on",
                (true, false) => "password",
                (false, true) => "single sign-on",
                (false, false) => "none",
            }
            .to_owned(),
            disabled: a.disabled,
            sso: a.oidc_subject.is_some(),
            last_login: when_opt(a.last_login_at),
            is_me: a.id == me,
        })
        .collect();
    Ok(AccountsPage {
        layout: layout.nav("settings"),
        tab: "accounts",
        accounts,
        media_users: media
            .iter()
            .map(|(id, n, s)| MediaUserOption { id: *id, label: format!("{n} ({s})") })
            .collect(),
        notice: None,
        error: None,
        error_field: String::new(),
        draft: Draft { role: "viewer".to_owned(), ..Draft::default() },
    })
}

/// The page again with an error (and the create form's input), or the error itself.
async fn with_error(
    ctx: &Ctx<'_>,
    layout: Layout,
    me: i64,
    e: AppError,
    draft: Option<Draft>,
) -> Reply {
    if e.status().code >= 500 {
        return e.into();
    }
    match build(ctx, layout, me).await {
        Ok(mut p) => {
            if let AppError::Validation { field, message } = &e {
                p.error_field.clone_from(field);
                p.error = Some(message.clone());
            } else {
                p.error = Some(e.public_message());
            }
            if let Some(d) = draft {
                p.draft = d;
            }
            page(e.status(), &p)
        }
        Err(e) => e.into(),
    }
}

fn done(ctx: &Ctx<'_>, what: &str) -> Reply {
    Reply::Redirect(Redirect::to(ctx.config.path(&format!("/settings/accounts?done={what}"))))
}

#[rocket::get("/settings/accounts?<done>")]
async fn list(ctx: Ctx<'_>, admin: Admin, layout: Layout, done: Option<&str>) -> Reply {
    match build(&ctx, layout, admin.0.id).await {
        Ok(mut p) => {
            p.notice = done
                .and_then(|d| match d {
                    "created" => Some("Account created."),
                    "updated" => Some("Account saved."),
                    "password" => Some("Password set. The account's sessions were signed out."),
                    "disabled" => Some("Account disabled and signed out."),
                    "enabled" => Some("Account enabled."),
                    "deleted" => Some("Account deleted."),
                    "unlinked" => Some("Single sign-on unlinked."),
                    _ => None,
                })
                .map(str::to_owned);
            page(Status::Ok, &p)
        }
        Err(e) => e.into(),
    }
}

fn parse_media_user(raw: Option<&str>) -> AppResult<Option<i64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| AppError::validation("media_user_id", "Pick a media user from the list.")),
    }
}

fn parse_role(raw: &str) -> AppResult<Role> {
    Role::parse(raw.trim()).ok_or_else(|| AppError::validation("role", "Pick admin or viewer."))
}

#[derive(FromForm)]
struct CreateForm {
    username: String,
    password: String,
    role: String,
    media_user_id: Option<String>,
}

#[rocket::post("/settings/accounts", data = "<form>")]
async fn create(ctx: Ctx<'_>, admin: Admin, layout: Layout, form: CsrfForm<CreateForm>) -> Reply {
    let f = form.0;
    let draft = Draft {
        username: f.username.clone(),
        role: f.role.clone(),
        media_user_id: f.media_user_id.as_deref().and_then(|s| s.parse().ok()),
    };
    let input = (|| {
        Ok::<_, AppError>(NewAccountInput {
            username: f.username.clone(),
            password: f.password.clone(),
            role: Some(parse_role(&f.role)?),
            media_user_id: parse_media_user(f.media_user_id.as_deref())?,
        })
    })();
    let result = match input {
        Ok(input) => {
            accounts::create(ctx.db, ctx.auth, Actor::new(admin.0.actor(), ctx.ip), input).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => done(&ctx, "created"),
        Err(e) => with_error(&ctx, layout, admin.0.id, e, Some(draft)).await,
    }
}

#[derive(FromForm)]
struct UpdateForm {
    role: String,
    media_user_id: Option<String>,
}

#[rocket::post("/settings/accounts/<id>", data = "<form>")]
async fn update(
    ctx: Ctx<'_>,
    admin: Admin,
    layout: Layout,
    id: i64,
    form: CsrfForm<UpdateForm>,
) -> Reply {
    let f = form.0;
    let result = async {
        let role = parse_role(&f.role)?;
        let media = parse_media_user(f.media_user_id.as_deref())?;
        accounts::update(ctx.db, Actor::new(admin.0.actor(), ctx.ip), id, role, media).await
    }
    .await;
    match result {
        Ok(()) => done(&ctx, "updated"),
        Err(e) => with_error(&ctx, layout, admin.0.id, e, None).await,
    }
}

#[derive(FromForm)]
struct PasswordForm {
    password: String,
}

#[rocket::post("/settings/accounts/<id>/password", data = "<form>")]
async fn reset_password(
    ctx: Ctx<'_>,
    admin: Admin,
    layout: Layout,
    id: i64,
    form: CsrfForm<PasswordForm>,
) -> Reply {
    let actor = Actor::new(admin.0.actor(), ctx.ip);
    match accounts::reset_password(ctx.db, ctx.auth, actor, id, &form.0.password).await {
        Ok(()) => done(&ctx, "password"),
        Err(e) => with_error(&ctx, layout, admin.0.id, e, None).await,
    }
}

#[rocket::post("/settings/accounts/<id>/disable", data = "<_form>")]
async fn disable(
    ctx: Ctx<'_>,
    admin: Admin,
    layout: Layout,
    id: i64,
    _form: CsrfForm<crate::auth::NoFields>,
) -> Reply {
    let actor = Actor::new(admin.0.actor(), ctx.ip);
    match accounts::set_disabled(ctx.db, actor, admin.0.id, id, true).await {
        Ok(()) => done(&ctx, "disabled"),
        Err(e) => with_error(&ctx, layout, admin.0.id, e, None).await,
    }
}

#[rocket::post("/settings/accounts/<id>/enable", data = "<_form>")]
async fn enable(
    ctx: Ctx<'_>,
    admin: Admin,
    layout: Layout,
    id: i64,
    _form: CsrfForm<crate::auth::NoFields>,
) -> Reply {
    let actor = Actor::new(admin.0.actor(), ctx.ip);
    match accounts::set_disabled(ctx.db, actor, admin.0.id, id, false).await {
        Ok(()) => done(&ctx, "enabled"),
        Err(e) => with_error(&ctx, layout, admin.0.id, e, None).await,
    }
}

#[rocket::post("/settings/accounts/<id>/delete", data = "<_form>")]
async fn delete(
    ctx: Ctx<'_>,
    admin: Admin,
    layout: Layout,
    id: i64,
    _form: CsrfForm<crate::auth::NoFields>,
) -> Reply {
    let actor = Actor::new(admin.0.actor(), ctx.ip);
    match accounts::delete(ctx.db, actor, admin.0.id, id).await {
        Ok(_) => done(&ctx, "deleted"),
        Err(e) => with_error(&ctx, layout, admin.0.id, e, None).await,
    }
}

#[rocket::post("/settings/accounts/<id>/unlink-oidc", data = "<_form>")]
async fn unlink_oidc(
    ctx: Ctx<'_>,
    admin: Admin,
    layout: Layout,
    id: i64,
    _form: CsrfForm<crate::auth::NoFields>,
) -> Reply {
    let actor = Actor::new(admin.0.actor(), ctx.ip);
    let result = ctx
        .db
        .write(move |c| {
            let account = rows::by_id(c, id)?.ok_or_else(|| AppError::not_found(format!("account {id}")))?;
            if account.password_hash.is_none() {
                return Err(AppError::Conflict(format!(
                    "{} has no password: unlinking single sign-on would lock the account out. Set a password first.",
                    account.username
                )));
            }
            rows::unlink_oidc(c, id)?;
            accounts::audit(c, &actor, "account.oidc_unlink", Some(&format!("account:{id}")), Some(serde_json::json!({"username": account.username})))
        })
        .await;
    match result {
        Ok(()) => done(&ctx, "unlinked"),
        Err(e) => with_error(&ctx, layout, admin.0.id, e, None).await,
    }
}
