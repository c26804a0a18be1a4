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
//! How it works: a session is a random token in an HttpOnly cookie whose SHA-256 is stored
//! with the account, an idle and an absolute expiry and a CSRF token of its own
//! ([`session`]). Anonymous forms (sign-in, setup) carry a CSRF token bound to a cookie
//! instead. Every state-changing request must show the token and, when the browser sends
//! one, an `Origin` that is ours ([`request`]). API keys ([`api_key`]) are hashed too.

pub mod accounts;
pub mod api_key;
pub mod limiter;
pub mod model;
pub mod oidc;
pub mod password;
pub mod request;
pub mod session;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use rocket::data::{Data, FromData, Outcome as DataOutcome};
use rocket::form::{Form, FromForm};
use rocket::http::{Method, Status};
use rocket::request::{FromRequest, Outcome, Request};

use crate::db::Db;
pub use model::{Role, Scope};

/// A signed-in Streamwarden account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// The media server user this account is (for viewers: the only one they see).
    pub media_user_id: Option<i64>,
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
    /// `id` is `None` for the key from `STREAMWARDEN_API_KEY`.
    ApiKey {
        id: Option<i64>,
        name: String,
        admin: bool,
    },
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

/// Sign-in state shared by all requests (managed by Rocket).
pub struct Auth {
    /// Failed sign-ins per account and per client address.
    pub limiter: limiter::Limiter,
    /// Bounds concurrent argon2 work (about 19 `MiB` each).
    pub hashing: password::Hashing,
    /// Set once an admin exists; until then every page leads to the setup page.
    set_up: AtomicBool,
}

impl Default for Auth {
    fn default() -> Self {
        Self::new()
    }
}

impl Auth {
    pub fn new() -> Self {
        Self {
            limiter: limiter::Limiter::default(),
            hashing: password::Hashing::default(),
            set_up: AtomicBool::new(false),
        }
    }

    /// True while no admin account exists (first start).
    pub async fn needs_setup(&self, db: &Db) -> bool {
        if self.set_up.load(Ordering::Relaxed) {
            return false;
        }
        match db.read(crate::db::accounts::count_admins).await {
            Ok(0) => true,
            Ok(_) => {
                self.set_up.store(true, Ordering::Relaxed);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether an admin exists");
                false
            }
        }
    }

    pub(crate) fn mark_set_up(&self) {
        self.set_up.store(true, Ordering::Relaxed);
    }
}

/// The signed-in user of this request, if any (looked up once per request).
pub async fn current_user(req: &Request<'_>) -> Option<AuthUser> {
    session::resolve(req).await.map(|s| s.user.clone())
}

/// The user [`current_user`] found for this request, without looking anything up: for code
/// that cannot wait (the error page). `None` if no guard asked yet.
pub fn cached_user(req: &Request<'_>) -> Option<AuthUser> {
    session::resolved_if_known(req).and_then(|s| s.map(|s| s.user.clone()))
}

/// The CSRF token of this request's session, for forms and `hx-headers`. Without a session
/// (sign-in and setup pages), a token bound to a cookie of its own.
pub async fn csrf_token(req: &Request<'_>) -> String {
    match session::resolve(req).await {
        Some(s) => s.csrf.clone(),
        None => session::anonymous_csrf(req),
    }
}

/// The client's address: the socket peer, or what a trusted proxy forwarded.
pub fn client_ip(req: &Request<'_>) -> Option<IpAddr> {
    request::client_ip(req)
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

/// A form without fields of its own, for [`CsrfForm<NoFields>`] on buttons.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFields;

#[rocket::async_trait]
impl<'r> FromForm<'r> for NoFields {
    type Context = ();

    fn init(_: rocket::form::Options) {}

    fn push_value((): &mut (), _: rocket::form::ValueField<'r>) {}

    async fn push_data((): &mut (), _: rocket::form::DataField<'r, '_>) {}

    fn finalize((): ()) -> rocket::form::Result<'r, Self> {
        Ok(NoFields)
    }
}

/// Why a guard refused, for the catcher that answers (see `web::auth::catchers`).
struct GuardFailure(std::sync::Mutex<Option<String>>);

/// Records `message` as the reason of a 401/403 for the catcher to show.
pub(crate) fn refuse<S>(
    req: &Request<'_>,
    status: Status,
    message: impl Into<String>,
) -> Outcome<S, ()> {
    note_refusal(req, message);
    Outcome::Error((status, ()))
}

pub(crate) fn note_refusal(req: &Request<'_>, message: impl Into<String>) {
    let slot = req.local_cache(|| GuardFailure(std::sync::Mutex::new(None)));
    *slot.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message.into());
}

/// The reason a guard gave for refusing this request, if any.
pub(crate) fn refusal(req: &Request<'_>) -> Option<String> {
    let slot = req.local_cache(|| GuardFailure(std::sync::Mutex::new(None)));
    slot.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

pub(crate) const SIGN_IN: &str = "Sign in to continue.";
const ADMINS_ONLY: &str = "Only admins can open this page.";

/// True for methods that change state and therefore need the CSRF token.
pub(crate) fn is_unsafe(method: Method) -> bool {
    !matches!(method, Method::Get | Method::Head | Method::Options)
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Viewer {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match current_user(req).await {
            Some(user) => Outcome::Success(Viewer(user)),
            None => refuse(req, Status::Unauthorized, SIGN_IN),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match current_user(req).await {
            Some(user) if user.is_admin() => Outcome::Success(Admin(user)),
            Some(_) => refuse(req, Status::Forbidden, ADMINS_ONLY),
            None => refuse(req, Status::Unauthorized, SIGN_IN),
        }
    }
}

/// The API caller: a key, or a session (which must prove CSRF on unsafe methods).
async fn api_principal(req: &Request<'_>) -> Result<Principal, (Status, String)> {
    match api_key::authenticate(req).await {
        Some(Ok(principal)) => return Ok(principal),
        Some(Err(message)) => return Err((Status::Unauthorized, message)),
        None => {}
    }
    let Some(user) = current_user(req).await else {
        return Err((
            Status::Unauthorized,
            "Send an API key (Authorization: Bearer <key> or X-Api-Key), or sign in.".to_owned(),
        ));
    };
    if is_unsafe(req.method()) {
        let header = req.headers().get_one(request::CSRF_HEADER);
        request::check_csrf(req, header).await.map_err(|m| (Status::Forbidden, m.to_owned()))?;
    }
    Ok(Principal::User(user))
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiViewer {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match api_principal(req).await {
            Ok(p) => Outcome::Success(ApiViewer(p)),
            Err((status, message)) => refuse(req, status, message),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiAdmin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match api_principal(req).await {
            Ok(p) if p.is_admin() => Outcome::Success(ApiAdmin(p)),
            Ok(Principal::ApiKey { .. }) => refuse(
                req,
                Status::Forbidden,
                "This API key is read-only; this needs an admin key.",
            ),
            Ok(Principal::User(_)) => refuse(req, Status::Forbidden, "Only admins can do this."),
            Err((status, message)) => refuse(req, status, message),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Csrf {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let header = req.headers().get_one(request::CSRF_HEADER);
        match request::check_csrf(req, header).await {
            Ok(()) => Outcome::Success(Csrf),
            Err(message) => refuse(req, Status::Forbidden, message),
        }
    }
}

/// The decoded fields of a [`CsrfForm`]'s body, kept for the request's lifetime.
struct FormFields(Vec<(String, String)>);

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + Send + 'r> FromData<'r> for CsrfForm<T> {
    type Error = rocket::form::Errors<'r>;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> DataOutcome<'r, Self> {
        use rocket::data::ToByteUnit as _;
        use rocket::form::error::ErrorKind;
        use rocket::http::RawStr;

        if req.content_type().is_none_or(|ct| !ct.is_form()) {
            return DataOutcome::Forward((data, Status::UnsupportedMediaType));
        }
        let limit = req.limits().get("form").unwrap_or_else(|| 256.kibibytes());
        let body = match data.open(limit).into_string().await {
            Ok(s) if s.is_complete() => s.into_inner(),
            Ok(_) => {
                let e = rocket::form::Error::from(ErrorKind::Io(std::io::Error::other(
                    "the form is too large",
                )));
                return DataOutcome::Error((Status::PayloadTooLarge, e.into()));
            }
            Err(e) => {
                return DataOutcome::Error((
                    Status::BadRequest,
                    rocket::form::Error::from(e).into(),
                ));
            }
        };
        let decode = |s: &str| RawStr::new(s).url_decode_lossy().into_owned();
        let fields = &req
            .local_cache(|| {
                FormFields(
                    Form::values(&body)
                        .map(|f| (decode(f.name.source()), decode(f.value)))
                        .collect(),
                )
            })
            .0;

        let field = fields.iter().find(|(name, _)| name == "csrf").map(|(_, v)| v.as_str());
        let header = req.headers().get_one(request::CSRF_HEADER);
        if let Err(message) = request::check_csrf(req, field.or(header)).await {
            note_refusal(req, message);
            let e = rocket::form::Error::validation(message).with_name("csrf");
            return DataOutcome::Error((Status::Forbidden, e.into()));
        }
        // Lenient: unknown fields (csrf among them) are ignored, missing ones default.
        let mut context = T::init(rocket::form::Options::Lenient);
        for (name, value) in fields.iter().filter(|(name, _)| name != "csrf") {
            let field = rocket::form::ValueField {
                name: rocket::form::name::NameView::new(name.as_str()),
                value: value.as_str(),
            };
            T::push_value(&mut context, field);
        }
        match T::finalize(context) {
            Ok(value) => DataOutcome::Success(CsrfForm(value)),
            Err(errors) => DataOutcome::Error((Status::UnprocessableEntity, errors)),
        }
    }
}
