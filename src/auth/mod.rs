//! Who is asking, and may they? Request guards every route uses.
//!
//! THE CONTRACT (other modules rely on these names and behaviours):
//! - [`Viewer`]: any signed-in user, for pages. Not signed in: a redirect to the login page
//!   (for htmx, `HX-Redirect`). [`Admin`]: a signed-in admin; a viewer gets a 403 page.
//! - [`ApiViewer`] / [`ApiAdmin`]: for `/api/v1`. An API key (`Authorization: Bearer` or
//!   `X-Api-Key`) or a signed-in session; JSON 401/403 otherwise. A session used on a
//!   state-changing API request must also carry `X-CSRF-Token`.
//! - [`Csrf`]: proves the CSRF token (header `X-CSRF-Token`) and the `Origin` on a
//!   state-changing browser request without a form body (htmx buttons).
//! - [`CsrfForm<T>`]: a url-encoded form whose `csrf` field (or the header) is checked; the
//!   other fields parse into `T` (which must not declare `csrf`).
//! - [`current_user`]: the signed-in user of a request, cached per request.
//! - [`AuthUser::scope`]: what media data the user may see (viewers: their linked media user).
//!
//! STUB: until sign-in lands, every request acts as a built-in admin and every CSRF check
//! passes. The types and their use are final; only the insides change.

use std::net::IpAddr;

use rocket::data::{Data, FromData, Outcome as DataOutcome};
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};

/// Role of a Streamwarden account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read-only: dashboard and history of their own linked media user.
    Viewer,
}

/// A signed-in Streamwarden account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// The media server user this account is (for viewers: the only one they see).
    pub media_user_id: Option<i64>,
}

/// Which media users' data a principal may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    MediaUser(i64),
    Nothing,
}

impl Scope {
    /// Whether data of `media_user_id` is visible.
    pub fn allows(self, media_user_id: i64) -> bool {
        match self {
            Scope::All => true,
            Scope::MediaUser(id) => id == media_user_id,
            Scope::Nothing => false,
        }
    }
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn scope(&self) -> Scope {
        match (self.role, self.media_user_id) {
            (Role::Admin, _) => Scope::All,
            (Role::Viewer, Some(id)) => Scope::MediaUser(id),
            (Role::Viewer, None) => Scope::Nothing,
        }
    }

    /// How this user appears in the audit log: `user:alice`.
    pub fn actor(&self) -> String {
        format!("user:{}", self.username)
    }
}

/// Whoever called the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(AuthUser),
    ApiKey { id: Option<i64>, name: String, admin: bool },
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        match self {
            Principal::User(u) => u.is_admin(),
            Principal::ApiKey { admin, .. } => *admin,
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            Principal::User(u) => u.scope(),
            Principal::ApiKey { .. } => Scope::All,
        }
    }

    /// How this principal appears in the audit log: `user:alice` or `api-key:ci`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User(u) => u.actor(),
            Principal::ApiKey { name, .. } => format!("api-key:{name}"),
        }
    }
}

/// The signed-in user of this request, if any (looked up once per request).
#[expect(
    clippy::unused_async,
    reason = "stub: the real lookup reads the session from the database"
)]
pub async fn current_user(req: &Request<'_>) -> Option<AuthUser> {
    // STUB: a built-in admin.
    let _ = req;
    Some(AuthUser { id: 0, username: "admin".to_owned(), role: Role::Admin, media_user_id: None })
}

/// The user [`current_user`] found for this request, without looking anything up: for code
/// that cannot wait (the error page). `None` if no guard asked yet.
pub fn cached_user(req: &Request<'_>) -> Option<AuthUser> {
    // STUB: the real lookup caches its result in the request's local cache.
    let _ = req;
    None
}

/// The CSRF token of this request's session, for forms and `hx-headers`.
#[expect(clippy::unused_async, reason = "stub: the real token comes from the session")]
pub async fn csrf_token(req: &Request<'_>) -> String {
    // STUB: sign-in will bind a random token to the session.
    let _ = req;
    "stub".to_owned()
}

/// The client's address: the socket peer, or what a trusted proxy forwarded.
pub fn client_ip(req: &Request<'_>) -> Option<IpAddr> {
    req.remote().map(|a| a.ip())
}

/// A signed-in user (any role).
#[derive(Debug, Clone)]
pub struct Viewer(pub AuthUser);

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Admin(pub AuthUser);

/// An API caller allowed to read.
#[derive(Debug, Clone)]
pub struct ApiViewer(pub Principal);

/// An API caller allowed to change things.
#[derive(Debug, Clone)]
pub struct ApiAdmin(pub Principal);

/// Proof that a state-changing browser request carries a valid CSRF token and origin.
#[derive(Debug, Clone, Copy)]
pub struct Csrf;

/// A url-encoded form whose CSRF token was checked.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Viewer {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match current_user(req).await {
            Some(user) => Outcome::Success(Viewer(user)),
            None => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match current_user(req).await {
            Some(user) if user.is_admin() => Outcome::Success(Admin(user)),
            Some(_) => Outcome::Error((Status::Forbidden, ())),
            None => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiViewer {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match current_user(req).await {
            Some(user) => Outcome::Success(ApiViewer(Principal::User(user))),
            None => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiAdmin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match current_user(req).await {
            Some(user) if user.is_admin() => Outcome::Success(ApiAdmin(Principal::User(user))),
            Some(_) => Outcome::Error((Status::Forbidden, ())),
            None => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Csrf {
    type Error = ();

    async fn from_request(_req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(Csrf)
    }
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + Send + 'r> FromData<'r> for CsrfForm<T> {
    type Error = rocket::form::Errors<'r>;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> DataOutcome<'r, Self> {
        // STUB: the real guard also checks the `csrf` field against the session.
        match Form::<rocket::form::Lenient<T>>::from_data(req, data).await {
            DataOutcome::Success(form) => {
                DataOutcome::Success(CsrfForm(form.into_inner().into_inner()))
            }
            DataOutcome::Error(e) => DataOutcome::Error(e),
            DataOutcome::Forward(f) => DataOutcome::Forward(f),
        }
    }
}
