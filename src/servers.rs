//! Configured media servers: what an admin may change, checked once, saved, audited, and
//! handed to the poller. The settings page and the API both come through here.

use std::net::IpAddr;

use crate::crypto::SecretBox;
use crate::db::servers::{self as rows, ServerInput, ServerRow, TOKEN_PURPOSE};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::media::{self, Connection, MediaError, ServerIdentity, ServerKind};
use crate::poller::registry::Registry;

/// Who changes the servers, and with what.
pub struct Editor<'a> {
    pub db: &'a Db,
    pub secrets: &'a SecretBox,
    pub registry: &'a Registry,
    /// For the audit log: `user:alice`, `api-key:ci`.
    pub actor: String,
    pub ip: Option<IpAddr>,
}

/// Fields to change; `None` keeps the stored value (a `None` token keeps the token).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub url: Option<String>,
    pub token: Option<String>,
    pub enabled: Option<bool>,
    pub verify_tls: Option<bool>,
    /// Follow the server's push besides polling it.
    pub push_enabled: Option<bool>,
}

/// A checked name, kind and URL, as stored.
struct Checked {
    name: String,
    kind: ServerKind,
    url: String,
}

fn check(name: &str, kind: &str, url: &str) -> AppResult<Checked> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::validation("name", "give the server a name of 1 to 64 characters"));
    }
    let kind = ServerKind::parse(kind)
        .ok_or_else(|| AppError::validation("kind", "choose Plex, Jellyfin or Emby"))?;
    let url =
        media::http::parse_base_url(url).map_err(|e| AppError::validation("url", e.to_string()))?;
    Ok(Checked { name: name.to_owned(), kind, url: url.as_str().trim_end_matches('/').to_owned() })
}

/// A token as typed: trimmed, and refused if it cannot be one.
pub fn check_token(token: &str) -> AppResult<String> {
    let token = token.trim();
    if token.is_empty() {
        return Err(AppError::validation("token", "the token is required"));
    }
    if token.len() > 512 || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AppError::validation(
            "token",
            "the token must be at most 512 characters, without spaces",
        ));
    }
    Ok(token.to_owned())
}

impl Editor<'_> {
    /// The audit entry of a change, written by the change's own transaction: a change is
    /// never saved without its entry, nor an entry without its change.
    fn audit(&self, action: &'static str) -> Audit {
        Audit { actor: self.actor.clone(), ip: self.ip.map(|ip| ip.to_string()), action }
    }

    /// Adds a server (every field but the flags is required).
    pub async fn create(&self, changes: Changes) -> AppResult<ServerRow> {
        let field = |v: Option<String>| v.unwrap_or_default();
        let checked = check(&field(changes.name), &field(changes.kind), &field(changes.url))?;
        let token = check_token(&field(changes.token))?;
        let input = ServerInput {
            name: checked.name,
            kind: checked.kind,
            url: checked.url,
            token_sealed: self.secrets.seal(TOKEN_PURPOSE, &token),
            enabled: changes.enabled.unwrap_or(true),
            verify_tls: changes.verify_tls.unwrap_or(true),
        };
        let audit = self.audit("server.create");
        let push = changes.push_enabled.unwrap_or(true);
        let row = self
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let now = crate::time::now_ms();
                let mut row = rows::insert(&tx, &input, now)?;
                if rows::set_push_enabled(&tx, row.id, push, now)? {
                    row.push_enabled = push;
                }
                let details = serde_json::json!({"name": row.name, "kind": row.kind, "url": row.url, "push_enabled": row.push_enabled});
                audit.record(&tx, row.id, Some(details))?;
                tx.commit()?;
                Ok(row)
            })
            .await?;
        self.registry.changed();
        Ok(row)
    }

    /// Changes a server; what `changes` leaves out stays as it was.
    pub async fn update(&self, id: i64, changes: Changes) -> AppResult<ServerRow> {
        let row = self
            .db
            .read(move |conn| rows::get(conn, id))
            .await?
            .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
        let checked = check(
            changes.name.as_deref().unwrap_or(&row.name),
            changes.kind.as_deref().unwrap_or(row.kind.as_str()),
            changes.url.as_deref().unwrap_or(&row.url),
        )?;
        let token_changed = changes.token.is_some();
        let token_sealed = match changes.token {
            Some(token) => self.secrets.seal(TOKEN_PURPOSE, &check_token(&token)?),
            None => row.token_sealed,
        };
        let input = ServerInput {
            name: checked.name,
            kind: checked.kind,
            url: checked.url,
            token_sealed,
            enabled: changes.enabled.unwrap_or(row.enabled),
            verify_tls: changes.verify_tls.unwrap_or(row.verify_tls),
        };
        let audit = self.audit("server.update");
        let push = changes.push_enabled.unwrap_or(row.push_enabled);
        let row = self
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let now = crate::time::now_ms();
                if rows::update(&tx, id, &input, now)?.is_none() {
                    return Ok(None);
                }
                rows::set_push_enabled(&tx, id, push, now)?;
                let Some(row) = rows::get(&tx, id)? else { return Ok(None) };
                let details = serde_json::json!({"name": row.name, "kind": row.kind, "url": row.url, "enabled": row.enabled, "verify_tls": row.verify_tls, "push_enabled": row.push_enabled, "token_changed": token_changed});
                audit.record(&tx, id, Some(details))?;
                tx.commit()?;
                Ok(Some(row))
            })
            .await?
            .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
        self.registry.changed();
        Ok(row)
    }

    /// Removes a server from polling and the lists; its history stays.
    pub async fn delete(&self, id: i64) -> AppResult<()> {
        let audit = self.audit("server.delete");
        let deleted = self
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                if !rows::soft_delete(&tx, id, crate::time::now_ms())? {
                    return Ok(false);
                }
                audit.record(&tx, id, None)?;
                tx.commit()?;
                Ok(true)
            })
            .await?;
        if !deleted {
            return Err(AppError::not_found(format!("server {id}")));
        }
        self.registry.changed();
        Ok(())
    }

    /// Tests a stored server's connection; remembers its name and version when it answers.
    pub async fn test(&self, id: i64) -> AppResult<ServerIdentity> {
        let row = self
            .db
            .read(move |conn| rows::get(conn, id))
            .await?
            .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
        let identity = test_connection(&self.registry.connection(&row)?)
            .await
            .map_err(|message| AppError::Upstream { server: row.name.clone(), message })?;
        let stored = identity.clone();
        self.db
            .write(move |conn| {
                rows::set_identity(
                    conn,
                    id,
                    stored.machine_id.as_deref(),
                    stored.name.as_deref(),
                    stored.version.as_deref(),
                )
            })
            .await?;
        Ok(identity)
    }
}

/// Who changed a server and how, for its audit entry (`server:{id}`).
struct Audit {
    actor: String,
    ip: Option<String>,
    action: &'static str,
}

impl Audit {
    fn record(
        &self,
        conn: &rusqlite::Connection,
        id: i64,
        details: Option<serde_json::Value>,
    ) -> AppResult<()> {
        let target = format!("server:{id}");
        db::audit::record(
            conn,
            &db::audit::NewEntry {
                actor: &self.actor,
                action: self.action,
                target: Some(&target),
                details,
                ip: self.ip.as_deref(),
            },
        )
    }
}

/// Checks a name, kind and URL as the add form has them (for testing before saving).
pub fn connection_of(
    name: &str,
    kind: &str,
    url: &str,
    token: String,
    verify_tls: bool,
) -> AppResult<Connection> {
    let checked = check(name, kind, url)?;
    Ok(Connection { kind: checked.kind, url: checked.url, token, verify_tls })
}

/// Tries a connection and says in a sentence what happened and what to do.
pub async fn test_connection(connection: &Connection) -> Result<ServerIdentity, String> {
    let client = media::connect(connection).map_err(|e| e.to_string())?;
    client.identify().await.map_err(|e| {
        let hint = match &e {
            MediaError::Unauthorized(_) => " The server refused the token: copy it again from the server's settings.",
            MediaError::Unreachable(detail) if detail.to_lowercase().contains("certificate") => {
                " The server's certificate is not trusted: if it is self-signed, untick \"Verify TLS certificate\"."
            }
            MediaError::Unreachable(_) | MediaError::Timeout(_) => {
                " Check the address and port, and that this container can reach the server (same network, firewall)."
            }
            MediaError::Status { status: 404, .. } | MediaError::Malformed(_) => {
                " Something answers there, but not this kind of server: check the kind and the URL (and any sub-path)."
            }
            _ => "",
        };
        format!("{e}.{hint}")
    })
}
