//! Server-side sessions: a random token in an HttpOnly cookie, stored as its SHA-256 with an
//! idle and an absolute expiry and a CSRF token of its own.

use std::sync::OnceLock;
use std::time::Duration;

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::Request;

use super::{AuthUser, request};
use crate::config::Config;
use crate::crypto::{random_token, sha256_hex};
use crate::db::{Db, sessions};
use crate::error::AppResult;

/// The session cookie.
pub const SESSION_COOKIE: &str = "streamwarden_session";
/// Binds the CSRF token of anonymous forms (sign-in, setup) to the browser.
pub const CSRF_COOKIE: &str = "streamwarden_csrf";
/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_hours(168);
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_hours(720);
/// `last_seen_at` is written at most this often, so that reading pages does not write.
const TOUCH_EVERY_MS: i64 = 60_000;

#[expect(clippy::cast_possible_truncation, reason = "durations of days fit in i64 milliseconds")]
const fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// The session behind a request.
#[derive(Debug, Clone)]
pub struct Current {
    pub id: i64,
    pub user: AuthUser,
    pub csrf: String,
    /// `password`, `oidc`, `demo` or `setup`.
    pub method: String,
    pub id_token_sealed: Option<String>,
}

/// Request-local cache of the lookup.
struct Resolved(Option<Current>);
/// Set once the lookup ran, for code that must not wait ([`resolved_if_known`]).
struct Known(OnceLock<Option<Current>>);

/// The session of this request, looked up once.
pub async fn resolve<'r>(req: &'r Request<'_>) -> Option<&'r Current> {
    let resolved = req.local_cache_async(async { Resolved(lookup(req).await) }).await;
    let known = req.local_cache(|| Known(OnceLock::new()));
    let _ = known.0.set(resolved.0.clone());
    resolved.0.as_ref()
}

/// The session if [`resolve`] already ran for this request; `None` if it did not.
pub fn resolved_if_known<'r>(req: &'r Request<'_>) -> Option<Option<&'r Current>> {
    req.local_cache(|| Known(OnceLock::new())).0.get().map(Option::as_ref)
}

async fn lookup(req: &Request<'_>) -> Option<Current> {
    let token = req.cookies().get(SESSION_COOKIE)?.value().to_owned();
    let db = req.rocket().state::<Db>()?;
    match find(db, &token).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            None
        }
    }
}

/// The live session for a raw token: expired ones are deleted, activity is recorded.
pub async fn find(db: &Db, token: &str) -> AppResult<Option<Current>> {
    let hash = sha256_hex(token.as_bytes());
    let Some((row, account)) = db.read(move |c| sessions::lookup(c, &hash)).await? else {
        return Ok(None);
    };
    let now = crate::time::now_ms();
    let idle = row.last_seen_at + ms(IDLE_TIMEOUT) <= now;
    if account.disabled || idle || row.expires_at <= now {
        let id = row.id;
        db.write(move |c| sessions::delete(c, id)).await?;
        return Ok(None);
    }
    if now - row.last_seen_at >= TOUCH_EVERY_MS {
        let id = row.id;
        db.write(move |c| sessions::touch(c, id, now)).await?;
    }
    Ok(Some(Current {
        id: row.id,
        user: AuthUser {
            id: account.id,
            username: account.username,
            role: account.role,
            media_user_id: account.media_user_id,
        },
        csrf: row.csrf_token,
        method: row.method,
        id_token_sealed: row.id_token_sealed,
    }))
}

/// The signed-in session of a request, to be checked again later: a response that outlives
/// its request (a server-sent events stream) must stop once the session is signed out,
/// expires, or its account is disabled or changes role or media user.
#[derive(Debug, Clone)]
pub struct Watch {
    token: String,
    /// The user as the request was authorized.
    pub user: AuthUser,
}

impl Watch {
    /// True while the session lives and its account is the same as when the request began.
    pub async fn still_valid(&self, db: &Db) -> bool {
        match find(db, &self.token).await {
            Ok(Some(current)) => current.user == self.user,
            Ok(None) => false,
            Err(e) => {
                // A database that cannot answer cannot vouch for the session either.
                tracing::warn!(error = %e, "cannot check a session again; ending its stream");
                false
            }
        }
    }
}

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for Watch {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, ()> {
        let token = req.cookies().get(SESSION_COOKIE).map(|c| c.value().to_owned());
        match (resolve(req).await, token) {
            (Some(current), Some(token)) => {
                rocket::request::Outcome::Success(Watch { token, user: current.user.clone() })
            }
            _ => super::refuse(req, rocket::http::Status::Unauthorized, super::SIGN_IN),
        }
    }
}

/// A new session's secrets, as handed to the browser.
#[derive(Debug, Clone)]
pub struct Started {
    pub id: i64,
    /// Raw token for the cookie; only its hash is stored.
    pub token: String,
    pub csrf: String,
}

/// Where a session starts from, for the session list and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub id_token_sealed: Option<String>,
}

impl Origin {
    pub fn of(req: &Request<'_>) -> Self {
        Self {
            ip: request::client_ip(req).map(|ip| ip.to_string()),
            user_agent: req
                .headers()
                .get_one("User-Agent")
                .map(|ua| ua.chars().take(200).collect()),
            id_token_sealed: None,
        }
    }
}

/// Creates a session for `account_id` (no cookie; see [`set_cookie`]).
pub async fn create(db: &Db, account_id: i64, method: &str, origin: Origin) -> AppResult<Started> {
    let token = random_token();
    let csrf = random_token();
    let hash = sha256_hex(token.as_bytes());
    let method = method.to_owned();
    let (csrf2, expires_at) = (csrf.clone(), crate::time::now_ms() + ms(ABSOLUTE_TIMEOUT));
    let id = db
        .write(move |c| {
            let now = crate::time::now_ms();
            sessions::delete_expired(c, now, now - ms(IDLE_TIMEOUT))?;
            sessions::insert(
                c,
                &sessions::NewSession {
                    token_hash: &hash,
                    account_id,
                    csrf_token: &csrf2,
                    method: &method,
                    expires_at,
                    ip: origin.ip.as_deref(),
                    user_agent: origin.user_agent.as_deref(),
                    id_token_sealed: origin.id_token_sealed.as_deref(),
                },
            )
        })
        .await?;
    Ok(Started { id, token, csrf })
}

/// A cookie with our attributes: HttpOnly, SameSite=Lax, `Secure` when the public URL is
/// https, scoped to the base path.
pub fn cookie(
    config: &Config,
    name: &'static str,
    value: String,
    max_age: Option<Duration>,
) -> Cookie<'static> {
    let path = if config.base_path.is_empty() { "/".to_owned() } else { config.base_path.clone() };
    let mut builder = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(config.is_https())
        .path(path);
    if let Some(age) = max_age {
        let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        builder = builder.max_age(rocket::time::Duration::seconds(secs));
    }
    builder.build()
}

/// Hands the browser its session cookie, replacing the anonymous CSRF cookie.
pub fn set_cookie(cookies: &CookieJar<'_>, config: &Config, started: &Started) {
    cookies.add(cookie(config, SESSION_COOKIE, started.token.clone(), Some(ABSOLUTE_TIMEOUT)));
    cookies.remove(cookie(config, CSRF_COOKIE, String::new(), None));
}

/// Ends the session of this request (if any) and removes its cookie.
pub async fn end(req: &Request<'_>, db: &Db, config: &Config) -> AppResult<Option<Current>> {
    let current = resolve(req).await.cloned();
    if let Some(session) = &current {
        let id = session.id;
        db.write(move |c| sessions::delete(c, id)).await?;
    }
    req.cookies().remove(cookie(config, SESSION_COOKIE, String::new(), None));
    Ok(current)
}

/// The anonymous CSRF token: the cookie's, or a new one set on the response.
pub fn anonymous_csrf(req: &Request<'_>) -> String {
    struct Issued(String);
    if let Some(existing) = anonymous_csrf_cookie(req) {
        return existing;
    }
    let issued = &req.local_cache(|| Issued(random_token())).0;
    if let Some(config) = req.rocket().state::<Config>() {
        req.cookies().add(cookie(config, CSRF_COOKIE, issued.clone(), None));
    }
    issued.clone()
}

/// The anonymous CSRF token the browser sent, if any.
pub fn anonymous_csrf_cookie(req: &Request<'_>) -> Option<String> {
    req.cookies().get(CSRF_COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() >= 32)
}
