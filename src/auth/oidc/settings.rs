//! OpenID Connect settings: stored from Settings → Sign-in (client secret sealed), each one
//! overridden and locked by its `STREAMWARDEN_OIDC_*` variable when set.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Config, OidcOverrides};
use crate::crypto::SecretBox;
use crate::db::{Db, settings};
use crate::error::{AppError, AppResult};

/// Key of the stored settings in the `settings` table.
pub const SETTINGS_KEY: &str = "auth.oidc";
/// Purpose string of the sealed client secret.
pub const SECRET_PURPOSE: &str = "oidc.client_secret";
pub const DEFAULT_SCOPES: &str = "openid profile email groups";
pub const DEFAULT_BUTTON: &str = "Sign in with single sign-on";
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// The path of the callback under the base path.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

/// What is stored (the secret sealed).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
#[expect(clippy::struct_excessive_bools, reason = "independent switches of the sign-in settings")]
pub struct Stored {
    pub enabled: bool,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_sealed: Option<String>,
    pub scopes: String,
    pub button_text: String,
    pub groups_claim: String,
    pub admin_group: String,
    pub allowed_group: String,
    pub auto_register: bool,
    pub auto_redirect: bool,
    pub link_by_email: bool,
    pub disable_local_login: bool,
    pub ca_file: String,
}

/// The settings in force.
#[derive(Clone, Default, PartialEq, Eq)]
#[expect(clippy::struct_excessive_bools, reason = "independent switches of the sign-in settings")]
pub struct OidcSettings {
    pub enabled: bool,
    pub issuer: String,
    pub client_id: String,
    /// Empty for a public client.
    pub client_secret: String,
    pub scopes: String,
    pub button_text: String,
    pub groups_claim: String,
    pub admin_group: String,
    pub allowed_group: String,
    pub auto_register: bool,
    pub auto_redirect: bool,
    pub link_by_email: bool,
    pub disable_local_login: bool,
    pub ca_file: Option<PathBuf>,
    /// Names of the fields set by the environment (locked in the form).
    pub locked: Vec<&'static str>,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("enabled", &self.enabled)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &if self.client_secret.is_empty() { "unset" } else { "set" })
            .field("scopes", &self.scopes)
            .field("admin_group", &self.admin_group)
            .field("allowed_group", &self.allowed_group)
            .finish_non_exhaustive()
    }
}

impl OidcSettings {
    /// True when sign-in through the provider can be offered.
    pub fn usable(&self) -> bool {
        self.enabled && !self.issuer.is_empty() && !self.client_id.is_empty()
    }

    pub fn is_locked(&self, field: &str) -> bool {
        self.locked.contains(&field)
    }

    /// Scopes to request beyond `openid` (which the library adds itself).
    pub fn extra_scopes(&self) -> Vec<String> {
        self.scopes
            .split([' ', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "openid")
            .map(str::to_owned)
            .collect()
    }
}

fn or_default(value: &str, default: &str) -> String {
    if value.trim().is_empty() { default.to_owned() } else { value.trim().to_owned() }
}

/// Merges stored settings with the environment's.
pub fn merge(stored: &Stored, env: &OidcOverrides, secrets: &SecretBox) -> OidcSettings {
    let mut locked = Vec::new();
    let mut pick_text = |name: &'static str, env: &Option<String>, stored: &str| match env {
        Some(v) => {
            locked.push(name);
            v.clone()
        }
        None => stored.to_owned(),
    };
    let issuer = pick_text("issuer", &env.issuer, &stored.issuer);
    let client_id = pick_text("client_id", &env.client_id, &stored.client_id);
    let scopes = pick_text("scopes", &env.scopes, &stored.scopes);
    let button_text = pick_text("button_text", &env.button_text, &stored.button_text);
    let groups_claim = pick_text("groups_claim", &env.groups_claim, &stored.groups_claim);
    let admin_group = pick_text("admin_group", &env.admin_group, &stored.admin_group);
    let allowed_group = pick_text("allowed_group", &env.allowed_group, &stored.allowed_group);
    let ca_file = pick_text(
        "ca_file",
        &env.ca_file.as_ref().map(|p| p.display().to_string()),
        &stored.ca_file,
    );
    let mut pick_bool = |name: &'static str, env: Option<bool>, stored: bool| match env {
        Some(v) => {
            locked.push(name);
            v
        }
        None => stored,
    };
    let auto_register = pick_bool("auto_register", env.auto_register, stored.auto_register);
    let auto_redirect = pick_bool("auto_redirect", env.auto_redirect, stored.auto_redirect);
    let link_by_email = pick_bool("link_by_email", env.link_by_email, stored.link_by_email);
    let disable_local_login =
        pick_bool("disable_local_login", env.disable_local_login, stored.disable_local_login);
    let client_secret = match &env.client_secret {
        Some(secret) => {
            locked.push("client_secret");
            secret.expose().to_owned()
        }
        None => stored
            .client_secret_sealed
            .as_deref()
            .and_then(|sealed| match secrets.open(SECRET_PURPOSE, sealed) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "the stored OpenID Connect client secret does not open");
                    None
                }
            })
            .unwrap_or_default(),
    };
    // The environment's issuer turns single sign-on on by itself.
    let enabled = if env.issuer.is_some() {
        locked.push("enabled");
        true
    } else {
        stored.enabled
    };
    OidcSettings {
        enabled,
        issuer,
        client_id,
        client_secret,
        scopes: or_default(&scopes, DEFAULT_SCOPES),
        button_text: or_default(&button_text, DEFAULT_BUTTON),
        groups_claim: or_default(&groups_claim, DEFAULT_GROUPS_CLAIM),
        admin_group: admin_group.trim().to_owned(),
        allowed_group: allowed_group.trim().to_owned(),
        auto_register,
        auto_redirect,
        link_by_email,
        disable_local_login,
        ca_file: Some(ca_file.trim()).filter(|p| !p.is_empty()).map(PathBuf::from),
        locked,
    }
}

/// The stored settings (defaults when never saved).
pub async fn stored(db: &Db) -> AppResult<Stored> {
    Ok(db.read(|c| settings::get::<Stored>(c, SETTINGS_KEY)).await?.unwrap_or_default())
}

/// The settings in force.
pub async fn load(db: &Db, config: &Config, secrets: &SecretBox) -> AppResult<OidcSettings> {
    Ok(merge(&stored(db).await?, &config.oidc, secrets))
}

/// Whether the password form is offered and accepted.
pub fn local_login_enabled(settings: &OidcSettings, config: &Config) -> bool {
    config.force_local_login || !settings.usable() || !settings.disable_local_login
}

/// The redirect URI to register at the provider: `<public URL><base path>/auth/oidc/callback`.
/// Without a public URL, the origin this request came to stands in (`derived` is then true).
pub fn redirect_uri(config: &Config, request_origin: Option<&str>) -> (String, bool) {
    // The public URL already ends with the base path (checked at start).
    if let Some(url) = &config.public_url {
        (format!("{}{CALLBACK_PATH}", url.as_str().trim_end_matches('/')), false)
    } else {
        let origin = request_origin.unwrap_or("http://localhost:8484");
        (format!("{origin}{}{CALLBACK_PATH}", config.base_path), true)
    }
}

/// Checks an issuer URL typed into the form.
pub fn validate_issuer(issuer: &str) -> AppResult<()> {
    if issuer.is_empty() {
        return Ok(());
    }
    match reqwest::Url::parse(issuer) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(AppError::validation(
            "issuer",
            "Enter the issuer as a URL, e.g. https://auth.example.com/application/o/streamwarden/",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn environment_wins_and_locks() {
        let secrets = SecretBox::new(&[1; 32]);
        let stored = Stored {
            enabled: false,
            issuer: "https://stored.example".into(),
            client_id: "stored".into(),
            client_secret_sealed: Some(secrets.seal(SECRET_PURPOSE, "stored-secret")),
            admin_group: "admins".into(),
            ..Stored::default()
        };
        let merged = merge(&stored, &OidcOverrides::default(), &secrets);
        assert!(!merged.enabled && merged.locked.is_empty());
        assert_eq!(merged.client_secret, "stored-secret");
        assert_eq!(merged.scopes, DEFAULT_SCOPES);
        assert_eq!(merged.extra_scopes(), ["profile", "email", "groups"]);

        let env = OidcOverrides {
            issuer: Some("https://env.example/".into()),
            client_secret: Some(Secret::new("env-secret")),
            auto_register: Some(true),
            ..OidcOverrides::default()
        };
        let merged = merge(&stored, &env, &secrets);
        assert!(merged.enabled && merged.usable());
        assert_eq!(merged.issuer, "https://env.example/", "kept exactly, slash and all");
        assert_eq!(merged.client_id, "stored");
        assert_eq!(merged.client_secret, "env-secret");
        assert!(merged.auto_register);
        for field in ["issuer", "client_secret", "auto_register", "enabled"] {
            assert!(merged.is_locked(field), "{field}");
        }
        assert!(!merged.is_locked("client_id"));
        assert!(!format!("{merged:?}").contains("env-secret"));
    }

    #[test]
    fn redirect_uri_follows_public_url_and_base_path() {
        let mut config = Config::for_tests(std::path::Path::new("/tmp"));
        assert_eq!(
            redirect_uri(&config, Some("http://192.168.1.5:8484")),
            ("http://192.168.1.5:8484/auth/oidc/callback".to_owned(), true)
        );
        config.base_path = "/sw".into();
        config.public_url = Some("https://media.example.com/sw".parse().unwrap());
        assert_eq!(
            redirect_uri(&config, None),
            ("https://media.example.com/sw/auth/oidc/callback".to_owned(), false)
        );
    }
}
