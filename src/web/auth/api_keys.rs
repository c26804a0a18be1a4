//! Settings → API keys (created, shown once, revoked), and `GET /api/v1/me`.

use askama::Template;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{FromForm, Route};
use serde::Serialize;
use serde_json::json;

use super::{Ctx, Reply, page, when, when_opt};
use crate::auth::{Admin, ApiAdmin, ApiViewer, CsrfForm, Principal, accounts, api_key};
use crate::db::api_keys;
use crate::error::{AppError, AppResult};
use crate::web::layout::Layout;

pub fn routes() -> Vec<Route> {
    rocket::routes![list, create, revoke, me, api_list, api_revoke]
}

pub struct KeyLine {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scope: String,
    pub created: String,
    pub created_by: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "settings/api_keys.html")]
struct ApiKeysPage {
    layout: Layout,
    tab: &'static str,
    keys: Vec<KeyLine>,
    env_key: bool,
    /// A key just created: shown this once.
    new_key: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
    draft_name: String,
}

async fn build(ctx: &Ctx<'_>, layout: Layout) -> AppResult<ApiKeysPage> {
    let keys = ctx.db.read(api_keys::active).await?;
    Ok(ApiKeysPage {
        layout: layout.nav("settings"),
        tab: "api-keys",
        keys: keys
            .into_iter()
            .map(|k| KeyLine {
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                scope: k.scope,
                created: when(k.created_at),
                created_by: k.created_by,
                last_used: when_opt(k.last_used_at),
            })
            .collect(),
        env_key: ctx.config.api_key.is_some(),
        new_key: None,
        notice: None,
        error: None,
        draft_name: String::new(),
    })
}

#[rocket::get("/settings/api-keys?<revoked>")]
async fn list(ctx: Ctx<'_>, _admin: Admin, layout: Layout, revoked: Option<bool>) -> Reply {
    match build(&ctx, layout).await {
        Ok(mut p) => {
            p.notice = revoked
                .filter(|r| *r)
                .map(|_| "API key revoked. Scripts using it now get 401.".to_owned());
            page(Status::Ok, &p)
        }
        Err(e) => e.into(),
    }
}

#[derive(FromForm)]
struct CreateForm {
    name: String,
    scope: String,
}

#[rocket::post("/settings/api-keys", data = "<form>")]
async fn create(ctx: Ctx<'_>, admin: Admin, layout: Layout, form: CsrfForm<CreateForm>) -> Reply {
    let f = form.0;
    let name = f.name.trim().to_owned();
    let result = async {
        if name.is_empty() || name.chars().count() > 64 {
            return Err(AppError::validation(
                "name",
                "Name the key (up to 64 characters), e.g. home-assistant.",
            ));
        }
        let admin_scope = match f.scope.as_str() {
            "admin" => true,
            "read" => false,
            _ => return Err(AppError::validation("scope", "Pick read-only or admin.")),
        };
        let generated = api_key::generate();
        let actor = accounts::Actor::new(admin.0.actor(), ctx.ip);
        let (n, scope) = (name.clone(), f.scope.clone());
        let (hash, prefix) = (generated.hash.clone(), generated.prefix.clone());
        ctx.db
            .write(move |c| {
                let tx = c.transaction()?;
                let id = api_keys::insert(&tx, &n, &hash, &prefix, admin_scope, &actor.name)?;
                accounts::audit(
                    &tx,
                    &actor,
                    "api_key.create",
                    Some(&format!("api_key:{id}")),
                    Some(json!({"name": n, "scope": scope, "prefix": prefix})),
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(generated.key)
    }
    .await;
    match (result, build(&ctx, layout).await) {
        (Ok(key), Ok(mut p)) => {
            p.new_key = Some((name, key));
            page(Status::Ok, &p)
        }
        (Err(e), Ok(mut p)) if e.status().code < 500 => {
            p.error = Some(match &e {
                AppError::Validation { message, .. } => message.clone(),
                other => other.public_message(),
            });
            p.draft_name = name;
            page(e.status(), &p)
        }
        (Err(e), _) | (_, Err(e)) => e.into(),
    }
}

/// Revokes a key, auditing who did it.
async fn revoke_key(ctx: &Ctx<'_>, actor: accounts::Actor, id: i64) -> AppResult<()> {
    ctx.db
        .write(move |c| {
            let tx = c.transaction()?;
            let key = api_keys::by_id(&tx, id)?
                .filter(|k| k.revoked_at.is_none())
                .ok_or_else(|| AppError::not_found(format!("API key {id}")))?;
            api_keys::revoke(&tx, id)?;
            accounts::audit(
                &tx,
                &actor,
                "api_key.revoke",
                Some(&format!("api_key:{id}")),
                Some(json!({"name": key.name})),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
}

#[rocket::post("/settings/api-keys/<id>/revoke", data = "<_form>")]
async fn revoke(
    ctx: Ctx<'_>,
    admin: Admin,
    id: i64,
    _form: CsrfForm<crate::auth::NoFields>,
) -> Reply {
    let actor = accounts::Actor::new(admin.0.actor(), ctx.ip);
    match revoke_key(&ctx, actor, id).await {
        Ok(()) => Reply::Redirect(Redirect::to(ctx.config.path("/settings/api-keys?revoked=true"))),
        Err(e) => e.into(),
    }
}

/// Who the API sees: for checking a key or a session.
#[derive(Serialize)]
pub struct Me {
    /// `user` or `api_key`.
    pub kind: &'static str,
    pub name: String,
    /// `admin`, `viewer` (users) or `admin`, `read` (keys).
    pub role: &'static str,
    pub media_user_id: Option<i64>,
}

#[rocket::get("/api/v1/me")]
pub fn me(caller: ApiViewer) -> Json<Me> {
    Json(match caller.0 {
        Principal::User(u) => Me {
            kind: "user",
            role: u.role.as_str(),
            media_user_id: u.media_user_id,
            name: u.username,
        },
        Principal::ApiKey { name, admin, .. } => Me {
            kind: "api_key",
            name,
            role: if admin { "admin" } else { "read" },
            media_user_id: None,
        },
    })
}

/// An API key as the API shows it (times in RFC 3339, like the rest of the API).
#[derive(Serialize)]
pub struct KeyJson {
    id: i64,
    name: String,
    prefix: String,
    /// `read` or `admin`.
    scope: String,
    created_by: String,
    created_at: String,
    last_used_at: Option<String>,
}

/// `GET /api/v1/api-keys`: the active keys (never the keys themselves).
#[rocket::get("/api/v1/api-keys")]
async fn api_list(ctx: Ctx<'_>, _caller: ApiAdmin) -> AppResult<Json<Vec<KeyJson>>> {
    let keys = ctx.db.read(api_keys::active).await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| KeyJson {
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                scope: k.scope,
                created_by: k.created_by,
                created_at: crate::format::rfc3339(k.created_at),
                last_used_at: k.last_used_at.map(crate::format::rfc3339),
            })
            .collect(),
    ))
}

/// `DELETE /api/v1/api-keys/{id}`: revokes a key.
#[rocket::delete("/api/v1/api-keys/<id>")]
async fn api_revoke(ctx: Ctx<'_>, caller: ApiAdmin, id: i64) -> AppResult<Status> {
    revoke_key(&ctx, accounts::Actor::new(caller.0.actor(), ctx.ip), id).await?;
    Ok(Status::NoContent)
}
