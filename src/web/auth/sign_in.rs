//! Settings → Sign-in: OpenID Connect, and whether password sign-in stays on.

use askama::Template;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{FromForm, Route};
use serde_json::json;

use super::{Ctx, Reply, page};
use crate::auth::oidc::settings::{self as oidc_settings, OidcSettings, SECRET_PURPOSE, Stored};
use crate::auth::oidc::{self, TestReport};
use crate::auth::{Admin, CsrfForm, accounts};
use crate::db::{accounts as rows, settings};
use crate::error::{AppError, AppResult};
use crate::web::htmx::HxRequest;
use crate::web::layout::Layout;

pub fn routes() -> Vec<Route> {
    rocket::routes![show, save, test]
}

#[derive(Template)]
#[template(path = "settings/sign_in.html")]
#[expect(clippy::struct_excessive_bools, reason = "independent facts the page shows")]
struct SignInPage {
    layout: Layout,
    tab: &'static str,
    s: OidcSettings,
    secret_set: bool,
    redirect_uri: String,
    redirect_derived: bool,
    oidc_admin_signed_in: bool,
    force_local_login: bool,
    notice: Option<String>,
    error: Option<String>,
    error_field: String,
    report: Option<Result<TestReport, String>>,
}

#[derive(Template)]
#[template(path = "settings/sign_in.html", block = "test_result")]
struct TestFragment {
    report: Option<Result<TestReport, String>>,
}

async fn build(ctx: &Ctx<'_>, layout: Layout) -> AppResult<SignInPage> {
    let s = oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await?;
    let signed_in = ctx.db.read(rows::oidc_admin_has_signed_in).await?;
    let (redirect_uri, redirect_derived) =
        oidc_settings::redirect_uri(ctx.config, ctx.own_origin.as_deref());
    Ok(SignInPage {
        layout: layout.nav("settings"),
        tab: "sign-in",
        secret_set: !s.client_secret.is_empty(),
        s,
        redirect_uri,
        redirect_derived,
        oidc_admin_signed_in: signed_in,
        force_local_login: ctx.config.force_local_login,
        notice: None,
        error: None,
        error_field: String::new(),
        report: None,
    })
}

#[rocket::get("/settings/sign-in?<saved>")]
async fn show(ctx: Ctx<'_>, _admin: Admin, layout: Layout, saved: Option<bool>) -> Reply {
    match build(&ctx, layout).await {
        Ok(mut p) => {
            p.notice = saved.filter(|s| *s).map(|_| "Sign-in settings saved.".to_owned());
            page(Status::Ok, &p)
        }
        Err(e) => e.into(),
    }
}

#[derive(FromForm, Default)]
#[expect(clippy::struct_excessive_bools, reason = "the form's checkboxes")]
struct SignInForm {
    enabled: bool,
    issuer: String,
    client_id: String,
    /// Empty keeps the stored secret.
    client_secret: String,
    clear_secret: bool,
    scopes: String,
    button_text: String,
    groups_claim: String,
    admin_group: String,
    allowed_group: String,
    auto_register: bool,
    auto_redirect: bool,
    link_by_email: bool,
    disable_local_login: bool,
    ca_file: String,
}

/// The stored settings this form asks for (fields locked by the environment keep their
/// stored value), validated.
fn apply(
    ctx: &Ctx<'_>,
    current: &Stored,
    locked: &OidcSettings,
    f: &SignInForm,
) -> AppResult<Stored> {
    let keep = |field: &str| locked.is_locked(field);
    let text = |field: &str, new: &str, old: &str| {
        if keep(field) { old.to_owned() } else { new.trim().to_owned() }
    };
    let flag = |field: &str, new: bool, old: bool| if keep(field) { old } else { new };
    let next = Stored {
        enabled: flag("enabled", f.enabled, current.enabled),
        issuer: text("issuer", &f.issuer, &current.issuer),
        client_id: text("client_id", &f.client_id, &current.client_id),
        client_secret_sealed: if keep("client_secret") {
            current.client_secret_sealed.clone()
        } else if f.clear_secret {
            None
        } else if f.client_secret.is_empty() {
            current.client_secret_sealed.clone()
        } else {
            Some(ctx.secrets.seal(SECRET_PURPOSE, &f.client_secret))
        },
        scopes: text("scopes", &f.scopes, &current.scopes),
        button_text: text("button_text", &f.button_text, &current.button_text),
        groups_claim: text("groups_claim", &f.groups_claim, &current.groups_claim),
        admin_group: text("admin_group", &f.admin_group, &current.admin_group),
        allowed_group: text("allowed_group", &f.allowed_group, &current.allowed_group),
        auto_register: flag("auto_register", f.auto_register, current.auto_register),
        auto_redirect: flag("auto_redirect", f.auto_redirect, current.auto_redirect),
        link_by_email: flag("link_by_email", f.link_by_email, current.link_by_email),
        disable_local_login: flag(
            "disable_local_login",
            f.disable_local_login,
            current.disable_local_login,
        ),
        ca_file: text("ca_file", &f.ca_file, &current.ca_file),
    };
    oidc_settings::validate_issuer(&next.issuer)?;
    if next.enabled && (next.issuer.is_empty() && !keep("issuer")) {
        return Err(AppError::validation(
            "issuer",
            "Enter the issuer URL to turn single sign-on on.",
        ));
    }
    if next.enabled && next.client_id.is_empty() && !keep("client_id") {
        return Err(AppError::validation(
            "client_id",
            "Enter the client ID to turn single sign-on on.",
        ));
    }
    if !next.scopes.is_empty() && !next.scopes.split_whitespace().any(|s| s == "openid") {
        return Err(AppError::validation("scopes", "The scopes must include openid."));
    }
    if !next.ca_file.is_empty() && !std::path::Path::new(&next.ca_file).is_file() {
        return Err(AppError::validation(
            "ca_file",
            format!("{} is not a readable file in the container.", next.ca_file),
        ));
    }
    Ok(next)
}

/// Names of the fields that changed (never their secret values).
fn changes(a: &Stored, b: &Stored) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let (va, vb) =
        (serde_json::to_value(a).unwrap_or_default(), serde_json::to_value(b).unwrap_or_default());
    if let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) {
        for (k, v) in mb {
            if ma.get(k) != Some(v) {
                let shown = if k == "client_secret_sealed" {
                    json!("changed")
                } else {
                    json!({"from": ma.get(k), "to": v})
                };
                out.insert(k.clone(), shown);
            }
        }
    }
    serde_json::Value::Object(out)
}

/// Puts the form's text back into the page after an error (locked fields stay).
fn fill_typed(s: &mut OidcSettings, f: &SignInForm) {
    let locked = s.locked.clone();
    let set = |field: &str, slot: &mut String, value: &str| {
        if !locked.contains(&field) {
            value.clone_into(slot);
        }
    };
    set("issuer", &mut s.issuer, &f.issuer);
    set("client_id", &mut s.client_id, &f.client_id);
    set("scopes", &mut s.scopes, &f.scopes);
    set("button_text", &mut s.button_text, &f.button_text);
    set("groups_claim", &mut s.groups_claim, &f.groups_claim);
    set("admin_group", &mut s.admin_group, &f.admin_group);
    set("allowed_group", &mut s.allowed_group, &f.allowed_group);
}

#[rocket::post("/settings/sign-in", data = "<form>")]
async fn save(ctx: Ctx<'_>, admin: Admin, layout: Layout, form: CsrfForm<SignInForm>) -> Reply {
    let f = form.0;
    let result: AppResult<()> = async {
        let current = oidc_settings::stored(ctx.db).await?;
        let merged = oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await?;
        let next = apply(&ctx, &current, &merged, &f)?;
        let actor = accounts::Actor::new(admin.0.actor(), ctx.ip);
        ctx.db
            .write(move |c| {
                let tx = c.transaction()?;
                if next.disable_local_login && !current.disable_local_login && !rows::oidc_admin_has_signed_in(&tx)? {
                    return Err(AppError::validation(
                        "disable_local_login",
                        "Password sign-in stays on until an admin has signed in through single sign-on at least once (so nobody is locked out).",
                    ));
                }
                let changed = changes(&current, &next);
                settings::put(&tx, oidc_settings::SETTINGS_KEY, &next)?;
                if changed.as_object().is_some_and(|m| !m.is_empty()) {
                    accounts::audit(&tx, &actor, "settings.sign_in", Some("settings:sign-in"), Some(changed))?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }
    .await;
    match result {
        Ok(()) => Reply::Redirect(Redirect::to(ctx.config.path("/settings/sign-in?saved=true"))),
        Err(e) if e.status().code < 500 => match build(&ctx, layout).await {
            Ok(mut p) => {
                if let AppError::Validation { field, message } = &e {
                    p.error_field.clone_from(field);
                    p.error = Some(message.clone());
                } else {
                    p.error = Some(e.public_message());
                }
                // Show what was typed, not what is stored.
                fill_typed(&mut p.s, &f);
                page(e.status(), &p)
            }
            Err(e) => e.into(),
        },
        Err(e) => e.into(),
    }
}

/// "Test configuration": discovery and keys with the settings in the form (not yet saved).
#[rocket::post("/settings/sign-in/test", data = "<form>")]
async fn test(
    ctx: Ctx<'_>,
    _admin: Admin,
    layout: Layout,
    hx: HxRequest,
    form: CsrfForm<SignInForm>,
) -> Reply {
    let f = form.0;
    let report = async {
        let current = oidc_settings::stored(ctx.db).await?;
        let merged = oidc_settings::load(ctx.db, ctx.config, ctx.secrets).await?;
        let mut next = apply(&ctx, &current, &merged, &f)?;
        next.enabled = true;
        let effective = oidc_settings::merge(&next, &ctx.config.oidc, ctx.secrets);
        Ok::<_, AppError>(oidc::test_configuration(&effective).await.map_err(|e| e.message))
    }
    .await;
    let report = match report {
        Ok(r) => r,
        Err(e) if e.status().code < 500 => Err(match e {
            AppError::Validation { message, .. } => message,
            other => other.public_message(),
        }),
        Err(e) => return e.into(),
    };
    if hx.is_htmx() {
        return page(Status::Ok, &TestFragment { report: Some(report) });
    }
    match build(&ctx, layout).await {
        Ok(mut p) => {
            p.report = Some(report);
            page(Status::Ok, &p)
        }
        Err(e) => e.into(),
    }
}
