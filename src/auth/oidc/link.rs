//! From a verified identity to a Streamwarden account: group checks, linking by `sub` (by
//! verified email only when chosen), auto-registration, and the role from the admin group.

use std::net::IpAddr;

use serde_json::json;

use super::{Identity, OidcError, OidcSettings};
use crate::auth::accounts::{Actor, audit, validate_username};
use crate::auth::{AuthUser, Role};
use crate::db::Db;
use crate::db::accounts::{self as rows, Account, NewAccount};

/// Finds or creates the account for `identity`. `setup` is true while no admin exists: then
/// only a member of the admin group gets in, as the first admin.
pub async fn account_for(
    db: &Db,
    settings: &OidcSettings,
    identity: &Identity,
    setup: bool,
    ip: Option<IpAddr>,
) -> Result<AuthUser, OidcError> {
    let who = identity
        .username
        .clone()
        .or_else(|| identity.email.clone())
        .unwrap_or_else(|| identity.subject.clone());
    let actor = Actor::new(format!("oidc:{who}"), ip);
    let is_admin = identity.in_group(&settings.admin_group);
    let refused = |code: &'static str, message: String| {
        let (actor, reason, groups) = (actor.clone(), code, identity.groups.clone());
        async move {
            let _ = db
                .write(move |c| {
                    audit(
                        c,
                        &actor,
                        "login.failed",
                        None,
                        Some(json!({"method": "oidc", "reason": reason, "groups": groups})),
                    )
                })
                .await;
            Err::<AuthUser, _>(OidcError::new(code, message))
        }
    };

    if setup && !is_admin {
        let message = if settings.admin_group.is_empty() {
            "Streamwarden has no admin yet. To create the first admin through single sign-on, set \
             the admin group (STREAMWARDEN_OIDC_ADMIN_GROUP) and sign in as one of its members, or \
             create a local admin on the setup page."
                .to_owned()
        } else {
            format!(
                "Streamwarden has no admin yet, and only a member of the admin group {} can become \
                 the first one. You are in: {}.",
                settings.admin_group,
                list(&identity.groups)
            )
        };
        return refused("not_allowed", message).await;
    }
    if !settings.allowed_group.is_empty()
        && !is_admin
        && !identity.in_group(&settings.allowed_group)
    {
        let message = format!(
            "Your account at the provider is not in the group {} that may use Streamwarden (you \
             are in: {}). Ask the administrator to add you to it.",
            settings.allowed_group,
            list(&identity.groups)
        );
        return refused("not_allowed", message).await;
    }

    let identity2 = identity.clone();
    let settings2 = settings.clone();
    let actor2 = actor.clone();
    let result = db
        .write(move |c| {
            let tx = c.transaction()?;
            let outcome = link_or_create(&tx, &settings2, &identity2, setup || settings2.auto_register, is_admin, &actor2)?;
            if let Ok(account) = &outcome {
                rows::touch_login(&tx, account.id, true)?;
                audit(
                    &tx,
                    &actor2,
                    "login",
                    Some(&format!("account:{}", account.id)),
                    Some(json!({"method": "oidc", "username": account.username, "role": account.role})),
                )?;
            }
            tx.commit()?;
            Ok(outcome)
        })
        .await
        .map_err(OidcError::from)?;
    match result {
        Ok(account) => Ok(AuthUser {
            id: account.id,
            username: account.username,
            role: account.role,
            media_user_id: account.media_user_id,
        }),
        Err(e) => refused(e.code, e.message).await,
    }
}

fn list(groups: &[String]) -> String {
    if groups.is_empty() { "no groups".to_owned() } else { groups.join(", ") }
}

/// Inside the transaction: the linked account (role synced with the admin group when one is
/// set), else one linked by verified email, else a new one when allowed.
#[expect(clippy::too_many_lines, reason = "one transaction that reads best as one sequence")]
fn link_or_create(
    tx: &rusqlite::Transaction<'_>,
    settings: &OidcSettings,
    identity: &Identity,
    may_create: bool,
    is_admin: bool,
    actor: &Actor,
) -> crate::error::AppResult<Result<Account, OidcError>> {
    let role_from_groups = if is_admin { Role::Admin } else { Role::Viewer };
    let mut account = rows::by_oidc(tx, &identity.issuer, &identity.subject)?;

    if account.is_none()
        && settings.link_by_email
        && identity.email_verified
        && let Some(email) = &identity.email
    {
        let candidates: Vec<Account> =
            rows::by_email(tx, email)?.into_iter().filter(|a| a.oidc_subject.is_none()).collect();
        if let [only] = candidates.as_slice() {
            rows::set_oidc(tx, only.id, &identity.issuer, &identity.subject, Some(email))?;
            audit(
                tx,
                actor,
                "account.oidc_link",
                Some(&format!("account:{}", only.id)),
                Some(json!({"by": "email"})),
            )?;
            account = rows::by_id(tx, only.id)?;
        }
    }

    let Some(mut account) = account else {
        if !may_create {
            return Ok(Err(OidcError::new(
                "no_account",
                format!(
                    "No Streamwarden account is linked to {}. Ask an admin to turn on \
                     auto-register in Settings → Sign-in, or to link your account.",
                    identity
                        .username
                        .as_deref()
                        .or(identity.email.as_deref())
                        .unwrap_or(&identity.subject)
                ),
            )));
        }
        let base = identity
            .username
            .clone()
            .or_else(|| {
                identity.email.as_ref().map(|e| e.split('@').next().unwrap_or(e).to_owned())
            })
            .unwrap_or_else(|| format!("user-{}", identity.subject));
        let base: String =
            base.chars().filter(|c| c.is_alphanumeric() || ".-_@+".contains(*c)).take(56).collect();
        let base =
            if validate_username("username", &base).is_ok() { base } else { "user".to_owned() };
        let mut name = base.clone();
        let mut n = 2;
        while rows::by_username(tx, &name)?.is_some() {
            name = format!("{base}-{n}");
            n += 1;
        }
        let id = rows::insert(
            tx,
            &NewAccount {
                username: &name,
                role: Some(role_from_groups),
                email: identity.email.as_deref(),
                oidc: Some((&identity.issuer, &identity.subject)),
                ..NewAccount::default()
            },
        )?;
        audit(
            tx,
            actor,
            "account.create",
            Some(&format!("account:{id}")),
            Some(json!({"username": name, "role": role_from_groups, "via": "oidc"})),
        )?;
        let created =
            rows::by_id(tx, id)?.ok_or_else(|| crate::error::AppError::not_found("account"))?;
        return Ok(Ok(created));
    };

    if account.disabled {
        return Ok(Err(OidcError::new(
            "disabled",
            format!(
                "The Streamwarden account {} is disabled. Ask an admin to enable it.",
                account.username
            ),
        )));
    }
    // With an admin group configured, the provider decides who is admin, at every sign-in.
    if !settings.admin_group.is_empty() && account.role != role_from_groups {
        if account.role == Role::Admin && rows::count_admins(tx)? <= 1 {
            tracing::warn!(account = %account.username, "left the admin group but is the last admin; kept as admin");
        } else {
            rows::set_role(tx, account.id, role_from_groups)?;
            audit(
                tx,
                actor,
                "account.update",
                Some(&format!("account:{}", account.id)),
                Some(
                    json!({"role": {"from": account.role, "to": role_from_groups}, "via": "oidc groups"}),
                ),
            )?;
            account.role = role_from_groups;
        }
    }
    Ok(Ok(account))
}
