//! Settings → Integrations: add, test, edit, enable or disable, delete instances. The API
//! key is checked, sealed and never sent back; leaving it empty on an edit keeps it.

use std::net::IpAddr;

use super::{Integration, IntegrationKind};
use crate::crypto::SecretBox;
use crate::db::integrations::{self as rows, API_KEY_PURPOSE, IntegrationInput, IntegrationRow};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};

/// Fields to change; `None` keeps the stored value (a `None` key keeps the key).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub url: Option<String>,
    pub api_key: Option<String>,
    pub enabled: Option<bool>,
    pub verify_tls: Option<bool>,
}

/// Who changes the integrations.
pub struct Editor<'a> {
    pub db: &'a Db,
    pub secrets: &'a SecretBox,
    /// For the audit log: `user:alice`, `api-key:ci`.
    pub actor: String,
    pub ip: Option<IpAddr>,
}

/// A key as typed: trimmed, and refused when it cannot be one.
pub fn check_key(key: &str) -> AppResult<String> {
    let key = key.trim();
    if key.is_empty() {
        return Err(AppError::validation("api_key", "the API key is required"));
    }
    if key.len() > 256 || key.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AppError::validation(
            "api_key",
            "the API key must be at most 256 characters, without spaces",
        ));
    }
    Ok(key.to_owned())
}

/// A checked kind, name and URL.
fn check(kind: &str, name: &str, url: &str) -> AppResult<(IntegrationKind, String, String)> {
    let kind = IntegrationKind::parse(kind)
        .ok_or_else(|| AppError::validation("kind", "choose radarr, sonarr or seerr"))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::validation("name", "give it a name of 1 to 64 characters"));
    }
    let url = crate::media::http::parse_base_url(url)
        .map_err(|e| AppError::validation("url", e.to_string()))?;
    Ok((kind, name.to_owned(), url.as_str().trim_end_matches('/').to_owned()))
}

/// Opens a stored row's key and builds its client.
pub fn client(row: &IntegrationRow, secrets: &SecretBox) -> AppResult<Box<dyn Integration>> {
    let kind = IntegrationKind::parse(&row.kind).ok_or_else(|| {
        AppError::internal("reading an integration", format!("kind {:?}", row.kind))
    })?;
    let key = secrets.open(API_KEY_PURPOSE, &row.api_key_sealed).map_err(|e| {
        AppError::Unavailable(format!("the API key of {:?} cannot be read: {e}", row.name))
    })?;
    super::connect(kind, &row.url, &key, row.verify_tls).map_err(|e| AppError::validation("url", e))
}

/// A client for the add form's values, to test before saving.
pub fn client_of(
    kind: &str,
    name: &str,
    url: &str,
    key: &str,
    verify_tls: bool,
) -> AppResult<Box<dyn Integration>> {
    let (kind, _, url) = check(kind, if name.trim().is_empty() { "test" } else { name }, url)?;
    super::connect(kind, &url, &check_key(key)?, verify_tls)
        .map_err(|e| AppError::validation("url", e))
}

/// Every enabled instance of `kind`, named, with its client (one whose key cannot be read
/// comes back as an error so the cascade can say so).
pub async fn enabled_of(
    db: &Db,
    secrets: &SecretBox,
    kind: IntegrationKind,
) -> AppResult<Vec<(String, AppResult<Box<dyn Integration>>)>> {
    let rows = db.read(rows::list).await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.enabled && r.kind == kind.as_str())
        .map(|r| {
            let client = client(&r, secrets);
            (r.name, client)
        })
        .collect())
}

impl Editor<'_> {
    async fn audit(&self, action: &'static str, id: i64, details: serde_json::Value) {
        let (actor, ip) = (self.actor.clone(), self.ip.map(|i| i.to_string()));
        let target = format!("integration:{id}");
        let written = self
            .db
            .write(move |conn| {
                db::audit::record(
                    conn,
                    &db::audit::NewEntry {
                        actor: &actor,
                        action,
                        target: Some(&target),
                        details: Some(details),
                        ip: ip.as_deref(),
                    },
                )
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, action, "could not write the audit log");
        }
    }

    async fn name_free(&self, name: &str, except: i64) -> AppResult<()> {
        let n = name.to_owned();
        if self.db.read(move |conn| rows::name_taken(conn, &n, except)).await? {
            return Err(AppError::validation(
                "name",
                format!("there is already an integration named {name:?}"),
            ));
        }
        Ok(())
    }

    pub async fn get(&self, id: i64) -> AppResult<IntegrationRow> {
        self.db
            .read(move |conn| rows::get(conn, id))
            .await?
            .ok_or_else(|| AppError::not_found(format!("integration {id}")))
    }

    /// Adds an instance (kind, name, URL and key required).
    pub async fn create(&self, changes: Changes) -> AppResult<IntegrationRow> {
        let field = |v: Option<String>| v.unwrap_or_default();
        let (kind, name, url) =
            check(&field(changes.kind), &field(changes.name), &field(changes.url))?;
        let key = check_key(&field(changes.api_key))?;
        self.name_free(&name, 0).await?;
        let input = IntegrationInput {
            kind: kind.as_str(),
            name,
            url,
            api_key_sealed: self.secrets.seal(API_KEY_PURPOSE, &key),
            enabled: changes.enabled.unwrap_or(true),
            verify_tls: changes.verify_tls.unwrap_or(true),
        };
        let id =
            self.db.write(move |conn| rows::insert(conn, &input, crate::time::now_ms())).await?;
        let row = self.get(id).await?;
        self.audit(
            "integration.create",
            id,
            serde_json::json!({"kind": row.kind, "name": row.name, "url": row.url}),
        )
        .await;
        Ok(row)
    }

    /// Changes an instance; what `changes` leaves out stays as it was.
    pub async fn update(&self, id: i64, changes: Changes) -> AppResult<IntegrationRow> {
        let row = self.get(id).await?;
        let (kind, name, url) = check(
            changes.kind.as_deref().unwrap_or(&row.kind),
            changes.name.as_deref().unwrap_or(&row.name),
            changes.url.as_deref().unwrap_or(&row.url),
        )?;
        self.name_free(&name, id).await?;
        let key_changed = changes.api_key.is_some();
        let api_key_sealed = match changes.api_key {
            Some(key) => self.secrets.seal(API_KEY_PURPOSE, &check_key(&key)?),
            None => row.api_key_sealed,
        };
        let input = IntegrationInput {
            kind: kind.as_str(),
            name,
            url,
            api_key_sealed,
            enabled: changes.enabled.unwrap_or(row.enabled),
            verify_tls: changes.verify_tls.unwrap_or(row.verify_tls),
        };
        if !self.db.write(move |conn| rows::update(conn, id, &input, crate::time::now_ms())).await?
        {
            return Err(AppError::not_found(format!("integration {id}")));
        }
        let row = self.get(id).await?;
        let details = serde_json::json!({"kind": row.kind, "name": row.name, "url": row.url, "enabled": row.enabled, "verify_tls": row.verify_tls, "api_key_changed": key_changed});
        self.audit("integration.update", id, details).await;
        Ok(row)
    }

    pub async fn delete(&self, id: i64) -> AppResult<()> {
        if !self.db.write(move |conn| rows::delete(conn, id)).await? {
            return Err(AppError::not_found(format!("integration {id}")));
        }
        self.audit("integration.delete", id, serde_json::Value::Null).await;
        Ok(())
    }

    /// Tests a stored instance; remembers its version when it answers.
    pub async fn test(&self, id: i64) -> AppResult<String> {
        let row = self.get(id).await?;
        let version = client(&row, self.secrets)?
            .test()
            .await
            .map_err(|message| AppError::Upstream { server: row.name.clone(), message })?;
        let stored = version.clone();
        self.db.write(move |conn| rows::set_version(conn, id, Some(&stored))).await?;
        Ok(version)
    }
}
