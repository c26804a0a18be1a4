//! OpenID Connect single sign-on: the authorization code flow with PKCE (S256), state and
//! nonce kept server-side for ten minutes and tied to the browser by a cookie, ID tokens
//! verified against the provider's keys with 60 s of clock-skew leeway, and RP-initiated
//! logout when the provider offers it.
//!
//! Discovery is done here rather than by the library, so that the issuer the user typed may
//! differ from the provider's by a trailing slash (Authentik's issuers end with one, most
//! others do not): the provider's own issuer string is then adopted and compared exactly
//! from there on. Every failure becomes an [`OidcError`] whose message a user can act on.

pub mod link;
pub mod settings;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJsonWebKeySet, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, LogoutRequest, Nonce, OAuth2TokenResponse as _,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, RequestTokenError, Scope, TokenResponse as _,
};
use serde_json::Value;

pub use self::settings::OidcSettings;
use crate::crypto::{random_token, sha256_hex};
use crate::db::{Db, oidc_flows};
use crate::error::AppError;

/// How long the provider has to send the user back.
pub const FLOW_TTL: Duration = Duration::from_mins(10);
/// Tolerated difference between our clock and the provider's.
pub const CLOCK_SKEW: Duration = Duration::from_mins(1);
/// Ties a flow to the browser that started it.
pub const FLOW_COOKIE: &str = "streamwarden_oidc";
/// Each request to the provider gives up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// A sign-in that did not work, with what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OidcError {
    /// Stable short code for the audit log and tests (`issuer_mismatch`, `nonce`, ...).
    pub code: &'static str,
    /// What happened and what to do, shown to the user.
    pub message: String,
}

impl OidcError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<OidcError> for AppError {
    fn from(e: OidcError) -> Self {
        match e.code {
            "not_allowed" | "no_account" | "disabled" => AppError::Forbidden(e.message),
            "internal" => AppError::internal("single sign-on", e.message),
            _ => AppError::validation("oidc", e.message),
        }
    }
}

impl From<AppError> for OidcError {
    fn from(e: AppError) -> Self {
        tracing::error!(error = %e, "single sign-on failed on our side");
        OidcError::new("internal", e.public_message())
    }
}

/// `openidconnect`'s HTTP client trait on our reqwest (the orphan rule wants a newtype).
pub struct OidcHttp(pub reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for OidcHttp {
    type Error = openidconnect::HttpClientError<reqwest::Error>;
    type Future = Pin<
        Box<
            dyn Future<Output = Result<openidconnect::HttpResponse, Self::Error>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, req: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let resp = self.0.execute(req.try_into().map_err(Box::new)?).await.map_err(Box::new)?;
            let mut b = openidconnect::http::Response::builder()
                .status(resp.status())
                .version(resp.version());
            for (k, v) in resp.headers() {
                b = b.header(k, v);
            }
            b.body(resp.bytes().await.map_err(Box::new)?.to_vec())
                .map_err(openidconnect::HttpClientError::Http)
        })
    }
}

/// The HTTP client for the provider: no redirects, a timeout, and the extra CA bundle.
pub fn http_client(settings: &OidcSettings) -> Result<reqwest::Client, OidcError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("Streamwarden/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &settings.ca_file {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| {
            OidcError::new("ca_file", format!("Cannot read the CA bundle {shown}: {e}."))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            OidcError::new(
                "ca_file",
                format!("The CA bundle {shown} is not PEM certificates: {e}."),
            )
        })?;
        if certs.is_empty() {
            return Err(OidcError::new(
                "ca_file",
                format!("The CA bundle {shown} holds no certificate."),
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| {
        OidcError::new("internal", format!("Cannot set up HTTPS to the provider: {e}."))
    })
}

/// Explains a failed request to the provider.
fn transport_error(what: &str, url: &str, e: &reqwest::Error) -> OidcError {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        return OidcError::new(
            "untrusted_certificate",
            format!(
                "The provider's TLS certificate at {url} is not trusted ({chain}). If it comes \
                 from a private CA, give its certificate as the CA bundle \
                 (STREAMWARDEN_OIDC_CA_FILE or Settings → Sign-in)."
            ),
        );
    }
    if e.is_timeout() {
        return OidcError::new("unreachable", format!("{what}: {url} did not answer in time."));
    }
    OidcError::new(
        "unreachable",
        format!(
            "{what}: cannot reach {url} ({chain}). Check the issuer URL and that this server can reach the provider."
        ),
    )
}

/// The provider as discovered.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub metadata: ProviderMetadataWithLogout,
    /// The issuer exactly as the provider states it.
    pub issuer: String,
    /// True when it differs from what was configured (a trailing slash).
    pub issuer_adopted: bool,
    pub discovery_url: String,
    /// The discovery document as JSON, for fields the library does not model.
    pub raw: Value,
}

impl Discovered {
    pub fn end_session_url(&self) -> Option<String> {
        self.metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()
            .map(|u| u.url().to_string())
    }

    /// Claims the provider says it can put in tokens (empty if it does not say).
    pub fn claims_supported(&self) -> Vec<String> {
        self.metadata
            .claims_supported()
            .map(|c| c.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default()
    }
}

/// The discovery URL for what the user typed: the issuer, or already the document's URL.
pub fn discovery_url(issuer: &str) -> String {
    let trimmed = issuer.trim();
    if trimmed.ends_with(DISCOVERY_SUFFIX) {
        trimmed.to_owned()
    } else {
        format!("{}{DISCOVERY_SUFFIX}", trimmed.trim_end_matches('/'))
    }
}

/// Fetches the discovery document and the signing keys.
pub async fn discover(
    settings: &OidcSettings,
    http: &reqwest::Client,
) -> Result<Discovered, OidcError> {
    if settings.issuer.trim().is_empty() || settings.client_id.trim().is_empty() {
        return Err(OidcError::new(
            "not_configured",
            "Single sign-on needs an issuer URL and a client ID (Settings → Sign-in).",
        ));
    }
    let url = discovery_url(&settings.issuer);
    let resp = http
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| transport_error("Discovery failed", &url, &e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(OidcError::new(
            "discovery",
            format!(
                "{url} answered {status}: no OpenID Connect configuration there. Check the issuer \
                 URL (for Authentik it is https://<host>/application/o/<slug>/)."
            ),
        ));
    }
    let body = resp.bytes().await.map_err(|e| transport_error("Discovery failed", &url, &e))?;
    let not_config = |e: serde_json::Error| {
        OidcError::new("discovery", format!("{url} is not an OpenID Connect configuration: {e}."))
    };
    let raw: Value = serde_json::from_slice(&body).map_err(not_config)?;
    let metadata: ProviderMetadataWithLogout =
        serde_json::from_value(raw.clone()).map_err(not_config)?;
    let stated = metadata.issuer().as_str().to_owned();
    let typed = settings.issuer.trim().trim_end_matches(DISCOVERY_SUFFIX);
    let adopted = stated != typed;
    if adopted && stated.trim_end_matches('/') != typed.trim_end_matches('/') {
        return Err(OidcError::new(
            "issuer_mismatch",
            format!(
                "Issuer mismatch: you entered {typed}, but the provider says its issuer is \
                 {stated}. Enter the provider's issuer exactly (its public URL, as the provider \
                 itself is configured)."
            ),
        ));
    }
    let jwks_url = metadata.jwks_uri().url().to_string();
    let resp = http
        .get(&jwks_url)
        .send()
        .await
        .map_err(|e| transport_error("Fetching the signing keys failed", &jwks_url, &e))?;
    if !resp.status().is_success() {
        return Err(OidcError::new(
            "discovery",
            format!("The provider's signing keys at {jwks_url} answered {}.", resp.status()),
        ));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| transport_error("Fetching the signing keys failed", &jwks_url, &e))?;
    let jwks: CoreJsonWebKeySet = serde_json::from_slice(&body).map_err(|e| {
        OidcError::new("discovery", format!("The signing keys at {jwks_url} do not parse: {e}."))
    })?;
    Ok(Discovered {
        metadata: metadata.set_jwks(jwks),
        issuer: stated,
        issuer_adopted: adopted,
        discovery_url: url,
        raw,
    })
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

fn client(
    settings: &OidcSettings,
    discovered: &Discovered,
    redirect_uri: &str,
) -> Result<Client, OidcError> {
    let secret = (!settings.client_secret.is_empty())
        .then(|| ClientSecret::new(settings.client_secret.clone()));
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| {
        OidcError::new(
            "redirect_uri",
            format!("The redirect URI {redirect_uri} is not a URL: {e}."),
        )
    })?;
    Ok(CoreClient::from_provider_metadata(
        discovered.metadata.clone(),
        ClientId::new(settings.client_id.clone()),
        secret,
    )
    .set_redirect_uri(redirect))
}

/// The start of a sign-in: where to send the browser, and the cookie value binding the flow.
pub struct Started {
    pub authorize_url: String,
    pub binding: String,
}

/// Prepares the authorization request and remembers its state, nonce and PKCE verifier.
pub async fn start(
    db: &Db,
    settings: &OidcSettings,
    redirect_uri: &str,
    next: &str,
) -> Result<Started, OidcError> {
    let http = http_client(settings)?;
    let discovered = discover(settings, &http).await?;
    let client = client(settings, &discovered, redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in settings.extra_scopes() {
        request = request.add_scope(Scope::new(scope));
    }
    let (url, state, nonce) = request.url();
    let binding = random_token();
    let flow = oidc_flows::Flow {
        binding_hash: sha256_hex(binding.as_bytes()),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next: next.to_owned(),
        expires_at: crate::time::now_ms() + i64::try_from(FLOW_TTL.as_millis()).unwrap_or(600_000),
    };
    let state_hash = sha256_hex(state.secret().as_bytes());
    db.write(move |c| oidc_flows::insert(c, &state_hash, &flow)).await?;
    Ok(Started { authorize_url: url.to_string(), binding })
}

/// Who the provider says signed in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The issuer exactly as the provider states it.
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// `preferred_username`, else `name`, else the email's local part.
    pub username: Option<String>,
    pub groups: Vec<String>,
    /// The raw ID token, for `id_token_hint` at logout.
    pub id_token: String,
    /// Where to go afterwards (from the flow).
    pub next: String,
}

impl Identity {
    pub fn in_group(&self, group: &str) -> bool {
        let group = group.trim();
        !group.is_empty()
            && self
                .groups
                .iter()
                .any(|g| g == group || g.trim_start_matches('/') == group.trim_start_matches('/'))
    }
}

/// The callback's query.
#[derive(Debug, Default, Clone)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Completes a sign-in: checks the state against the stored flow and this browser, exchanges
/// the code (with the PKCE verifier), verifies the ID token and its nonce, and gathers the
/// claims (ID token, then userinfo).
#[expect(
    clippy::too_many_lines,
    reason = "the protocol steps in order; splitting hides the sequence"
)]
pub async fn finish(
    db: &Db,
    settings: &OidcSettings,
    redirect_uri: &str,
    callback: Callback,
    binding_cookie: Option<&str>,
) -> Result<Identity, OidcError> {
    if let Some(error) = &callback.error {
        let detail = callback.error_description.as_deref().unwrap_or("");
        let hint = if detail.to_lowercase().contains("redirect") || error == "invalid_request" {
            format!(
                " Check that the redirect URI registered at the provider is exactly {redirect_uri}."
            )
        } else if error == "access_denied" {
            " The provider did not let you in; ask its administrator for access.".to_owned()
        } else {
            String::new()
        };
        return Err(OidcError::new(
            "provider_error",
            format!("The provider refused the sign-in: {error} {detail}.{hint}").replace(" .", "."),
        ));
    }
    let state = callback.state.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        OidcError::new("state", "The provider's answer has no state. Start the sign-in again.")
    })?;
    let state_hash = sha256_hex(state.as_bytes());
    let flow = db.write(move |c| oidc_flows::take(c, &state_hash)).await?;
    let expired = || {
        OidcError::new(
            "state",
            "This sign-in link is unknown, expired or was already used. Start the sign-in again.",
        )
    };
    let flow = flow.ok_or_else(expired)?;
    if flow.expires_at <= crate::time::now_ms() {
        return Err(expired());
    }
    let bound = binding_cookie.is_some_and(|b| {
        crate::crypto::constant_time_eq(
            sha256_hex(b.as_bytes()).as_bytes(),
            flow.binding_hash.as_bytes(),
        )
    });
    if !bound {
        return Err(OidcError::new(
            "state",
            "This sign-in was started in another browser (or its cookie was lost). Start the sign-in again here.",
        ));
    }
    let code = callback.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        OidcError::new("provider_error", "The provider's answer has no authorization code.")
    })?;

    let http = http_client(settings)?;
    let discovered = discover(settings, &http).await?;
    let client = client(settings, &discovered, redirect_uri)?;
    let adapter = OidcHttp(http.clone());
    let token: CoreTokenResponse = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            OidcError::new("discovery", format!("The provider has no token endpoint: {e}."))
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
        .request_async(&adapter)
        .await
        .map_err(|e| token_error(&e, redirect_uri))?;
    let id_token = token.id_token().ok_or_else(|| {
        OidcError::new(
            "token",
            "The provider sent no ID token. Is the `openid` scope allowed for this client?",
        )
    })?;
    let claims = verify_id_token(&client, id_token, &flow.nonce, &discovered.issuer)?;
    let mut extra = payload(id_token)?;

    // Providers such as Authelia put groups only in userinfo: merge it in.
    if let Some(url) = discovered.metadata.userinfo_endpoint() {
        let url = url.url().to_string();
        match userinfo(&http, &url, token.access_token().secret()).await {
            Ok(Value::Object(info)) => {
                if info.get("sub").and_then(Value::as_str) == Some(claims.subject.as_str()) {
                    if let Value::Object(map) = &mut extra {
                        for (k, v) in info {
                            map.entry(k).or_insert(v);
                        }
                    }
                } else {
                    tracing::warn!("userinfo answered for another subject; ignored");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "userinfo request failed; using the ID token's claims");
            }
        }
    }
    Ok(Identity {
        issuer: discovered.issuer,
        subject: claims.subject,
        email: claims
            .email
            .or_else(|| extra.get("email").and_then(Value::as_str).map(str::to_owned)),
        email_verified: claims.email_verified
            || extra.get("email_verified").and_then(Value::as_bool).unwrap_or(false),
        username: claims.username.or_else(|| {
            ["preferred_username", "name"]
                .iter()
                .find_map(|k| extra.get(*k).and_then(Value::as_str).map(str::to_owned))
        }),
        groups: groups(&extra, &settings.groups_claim),
        id_token: id_token.to_string(),
        next: flow.next,
    })
}

/// What we take from a verified ID token.
#[expect(clippy::struct_field_names, reason = "the claim names as the specification spells them")]
struct Verified {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    username: Option<String>,
}

/// Starts the message of a refused `iat`, which the library reports as `Expired` too.
const ISSUED_IN_THE_FUTURE: &str = "issued in the future";

fn verify_id_token(
    client: &Client,
    id_token: &CoreIdToken,
    nonce: &str,
    issuer: &str,
) -> Result<Verified, OidcError> {
    let skew = chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_default();
    let verifier = client
        .id_token_verifier()
        // Expiry is checked against a clock turned back by the leeway...
        .set_time_fn(move || chrono::Utc::now() - skew)
        // ...and a token issued "in the future" by more than the leeway is refused.
        .set_issue_time_verifier_fn(move |iat| {
            let now = chrono::Utc::now();
            if iat > now + skew {
                Err(format!("{ISSUED_IN_THE_FUTURE}{}", rfc3339(iat)))
            } else {
                Ok(())
            }
        });
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|e| claims_error(&e, id_token, issuer))?;
    Ok(Verified {
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified().unwrap_or(false),
        username: claims.preferred_username().map(|u| u.to_string()),
    })
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Explains a refused ID token; `issuer` is the provider's, from its discovery document.
fn claims_error(e: &ClaimsVerificationError, id_token: &CoreIdToken, issuer: &str) -> OidcError {
    let now = rfc3339(chrono::Utc::now());
    // Unverified: only to say what the token claimed.
    let claimed = payload(id_token).unwrap_or_default();
    match e {
        ClaimsVerificationError::Expired(detail) if detail.starts_with(ISSUED_IN_THE_FUTURE) => {
            let at = detail.strip_prefix(ISSUED_IN_THE_FUTURE).unwrap_or_default();
            OidcError::new(
                "clock_skew",
                format!(
                    "The provider's ID token says it was issued at {at}, but our clock says \
                     {now}: more than a minute in the future. The clocks of this server and \
                     the provider differ: check NTP on both."
                ),
            )
        }
        ClaimsVerificationError::Expired(detail) => {
            // The library's detail shows our clock turned back by the leeway: state the
            // token's own expiry against the real clock instead.
            let expired_at = claimed
                .get("exp")
                .and_then(Value::as_i64)
                .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0))
                .map_or_else(|| detail.clone(), rfc3339);
            OidcError::new(
                "expired",
                format!(
                    "The provider's ID token has expired: it expired at {expired_at}, and our \
                     clock says {now} (a minute of difference is tolerated). The clocks of this \
                     server and the provider differ: check NTP on both, then sign in again."
                ),
            )
        }
        ClaimsVerificationError::InvalidNonce(_) => OidcError::new(
            "nonce",
            "The ID token does not belong to this sign-in (nonce mismatch). Start the sign-in again.",
        ),
        ClaimsVerificationError::InvalidIssuer(_) => {
            let named = claimed.get("iss").and_then(Value::as_str).unwrap_or("no issuer");
            OidcError::new(
                "issuer_mismatch",
                format!(
                    "Issuer mismatch: the ID token's issuer does not match the provider's. The \
                     token names {named}, but the provider's discovery document says {issuer}. \
                     Issuers are compared exactly, trailing slash included: the \
                     provider must state one issuer in both places (check its public URL or \
                     issuer setting)."
                ),
            )
        }
        ClaimsVerificationError::InvalidAudience(detail) => OidcError::new(
            "audience",
            format!("The ID token was made for another client ({detail}). Check the client ID."),
        ),
        ClaimsVerificationError::SignatureVerification(detail) => OidcError::new(
            "signature",
            format!(
                "The ID token's signature does not verify against the provider's keys \
                 ({detail}). It was not signed by a key the provider publishes: sign in again, \
                 and if this repeats, check that the provider signs ID tokens with RS256 and a \
                 key listed at its jwks_uri, and that nothing between here and the provider \
                 alters its answers."
            ),
        ),
        other => OidcError::new("token", format!("The ID token was refused: {other}.")),
    }
}

fn token_error<RE: std::error::Error + 'static>(
    e: &RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
    redirect_uri: &str,
) -> OidcError {
    match e {
        RequestTokenError::ServerResponse(resp) => {
            let detail = resp.error_description().map(String::as_str).unwrap_or_default();
            let code = resp.error().to_string();
            let hint = match code.as_str() {
                "invalid_client" | "unauthorized_client" => {
                    " Check the client ID and secret (and the token endpoint authentication method, client_secret_basic)."
                        .to_owned()
                }
                "invalid_grant" => format!(
                    " Check that the redirect URI registered at the provider is exactly {redirect_uri}, and that PKCE (S256) is allowed."
                ),
                _ => String::new(),
            };
            OidcError::new(
                "token",
                format!("The provider refused the code: {code} {detail}.{hint}").replace(" .", "."),
            )
        }
        RequestTokenError::Request(inner) => OidcError::new(
            "unreachable",
            format!("Cannot reach the provider's token endpoint: {inner}."),
        ),
        RequestTokenError::Parse(inner, _) => {
            OidcError::new("token", format!("The provider's token answer does not parse: {inner}."))
        }
        RequestTokenError::Other(inner) => {
            OidcError::new("token", format!("The token request failed: {inner}."))
        }
    }
}

/// The ID token's payload as JSON: once verified, for claims the library does not model;
/// when refused, to say what it claimed.
fn payload(id_token: &CoreIdToken) -> Result<Value, OidcError> {
    let jwt = id_token.to_string();
    let part = jwt.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| OidcError::new("token", "The ID token's claims do not parse."))
}

async fn userinfo(http: &reqwest::Client, url: &str, access_token: &str) -> Result<Value, String> {
    let resp = http
        .get(url)
        .bearer_auth(access_token)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered {}", resp.status()));
    }
    // A signed userinfo (application/jwt) is not needed for groups; skip it.
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !is_json {
        return Ok(Value::Null);
    }
    resp.json().await.map_err(|e| e.to_string())
}

/// The groups in `claim` (a dotted path reaches nested claims, e.g. `realm_access.roles`):
/// a list of strings, or one string.
pub fn groups(claims: &Value, claim: &str) -> Vec<String> {
    let direct = claims.get(claim);
    let value = direct.or_else(|| claim.split('.').try_fold(claims, |v, key| v.get(key)));
    match value {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Where to send the browser at sign-out for RP-initiated logout, if the provider offers it.
pub async fn logout_url(
    settings: &OidcSettings,
    id_token: &str,
    post_logout_redirect: &str,
) -> Option<String> {
    let http = http_client(settings).ok()?;
    let discovered = match discover(settings, &http).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the provider for sign-out; signed out here only");
            return None;
        }
    };
    let endpoint = discovered.metadata.additional_metadata().end_session_endpoint.clone()?;
    let token: CoreIdToken = id_token.parse().ok()?;
    let mut request = LogoutRequest::from(endpoint)
        .set_id_token_hint(&token)
        .set_client_id(ClientId::new(settings.client_id.clone()));
    if let Ok(url) = PostLogoutRedirectUrl::new(post_logout_redirect.to_owned()) {
        request = request.set_post_logout_redirect_uri(url);
    }
    Some(request.http_get_url().to_string())
}

/// The result of "Test configuration".
#[derive(Debug, Clone)]
pub struct TestReport {
    pub discovery_url: String,
    pub issuer: String,
    pub issuer_adopted: bool,
    pub authorization_endpoint: String,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    pub keys: usize,
    /// `Some(false)` when the provider lists its claims and the groups claim is not among them.
    pub groups_claim_listed: Option<bool>,
    pub pkce_s256: Option<bool>,
}

/// Discovers the provider and reports what it offers, without signing anyone in.
pub async fn test_configuration(settings: &OidcSettings) -> Result<TestReport, OidcError> {
    let http = http_client(settings)?;
    let d = discover(settings, &http).await?;
    let claims = d.claims_supported();
    let groups_root = settings.groups_claim.split('.').next().unwrap_or_default().to_owned();
    let pkce = d
        .raw
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
        .map(|m| m.iter().any(|m| m.as_str() == Some("S256")));
    Ok(TestReport {
        discovery_url: d.discovery_url.clone(),
        issuer_adopted: d.issuer_adopted,
        authorization_endpoint: d.metadata.authorization_endpoint().url().to_string(),
        token_endpoint: d.metadata.token_endpoint().map(|u| u.url().to_string()),
        userinfo_endpoint: d.metadata.userinfo_endpoint().map(|u| u.url().to_string()),
        end_session_endpoint: d.end_session_url(),
        keys: d.metadata.jwks().keys().len(),
        groups_claim_listed: (!claims.is_empty()).then(|| claims.contains(&groups_root)),
        pkce_s256: pkce,
        issuer: d.issuer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_accepts_issuer_or_document() {
        assert_eq!(
            discovery_url("https://a.example/"),
            "https://a.example/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://a.example"),
            "https://a.example/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://a.example/application/o/sw/.well-known/openid-configuration"),
            "https://a.example/application/o/sw/.well-known/openid-configuration"
        );
    }

    #[test]
    fn groups_from_flat_nested_or_single_claims() {
        let claims = serde_json::json!({
            "groups": ["admins", "/family"],
            "realm_access": {"roles": ["viewer"]},
            "role": "admin",
            "odd": 3,
        });
        assert_eq!(groups(&claims, "groups"), ["admins", "/family"]);
        assert_eq!(groups(&claims, "realm_access.roles"), ["viewer"]);
        assert_eq!(groups(&claims, "role"), ["admin"]);
        assert!(groups(&claims, "odd").is_empty() && groups(&claims, "missing").is_empty());
        let id = Identity { groups: groups(&claims, "groups"), ..Identity::default() };
        assert!(id.in_group("admins") && id.in_group("family") && id.in_group("/admins"));
        assert!(!id.in_group("") && !id.in_group("other"));
    }
}
