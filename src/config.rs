//! Configuration: one typed struct, loaded from defaults < an optional TOML file <
//! `STREAMWARDEN_*` environment variables (secrets also as `STREAMWARDEN_*_FILE`).
//!
//! Every option is declared once in [`OPTIONS`], with its documentation. Values from every
//! source are parsed by the same functions, so a bad value gets the same message whether it
//! came from the file or the environment, and the message always names where it came from.
//! Everything that is not needed before the web UI is up lives in the UI, not here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use ipnet::IpNet;
use reqwest::Url;

/// Prefix of every environment variable we read.
pub const ENV_PREFIX: &str = "STREAMWARDEN_";

/// The port Streamwarden listens on by default, inside and outside the container.
pub const DEFAULT_PORT: u16 = 8484;

/// The shortest poll interval we accept: media servers are not ours to hammer.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The validated configuration, handed around as managed state (never a global).
#[derive(Clone)]
pub struct Config {
    /// Directory holding the database, key files, `geoip/` and `backups/`.
    pub data_dir: PathBuf,
    /// Address the web server binds to.
    pub address: IpAddr,
    /// TCP port the web server listens on.
    pub port: u16,
    /// The address users reach us at (for links in alerts and the OIDC redirect URI),
    /// without a trailing slash. `None` when not configured.
    pub public_url: Option<Url>,
    /// Path prefix when served from a sub-path behind a reverse proxy: `""` or `"/x"`.
    pub base_path: String,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `tracing` filter directive, e.g. `info` or `streamwarden=debug,info`.
    pub log: String,
    /// Time between two polls of every media server.
    pub poll_interval: Duration,
    /// How long a new stream must exist before it counts (history, rules).
    pub confirm_window: Duration,
    /// Rocket's cookie signing/encryption key (64 bytes); generated when absent.
    pub secret_key: Option<KeyMaterial>,
    /// Key encrypting secrets at rest (32 bytes); generated when absent.
    pub encryption_key: Option<KeyMaterial>,
    /// An admin API key for automation and first boot.
    pub api_key: Option<Secret>,
    /// MaxMind licence key for downloading GeoLite2.
    pub maxmind_license_key: Option<Secret>,
    /// Set by `streamwarden demo` (never from the environment): simulated media servers,
    /// and a one-click demo admin on the sign-in page.
    pub demo: bool,
    /// OpenID Connect settings from the environment; each one set here overrides (and
    /// locks) the same setting in the web interface.
    pub oidc: OidcOverrides,
    /// Break-glass: password sign-in stays available even when the settings turned it off.
    pub force_local_login: bool,
}

/// OpenID Connect settings given by the environment (`None`: not set there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcOverrides {
    /// Issuer URL (or its `/.well-known/openid-configuration` URL).
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Space-separated scopes.
    pub scopes: Option<String>,
    pub button_text: Option<String>,
    /// Name of the claim holding the groups (a dotted path reaches nested claims).
    pub groups_claim: Option<String>,
    pub admin_group: Option<String>,
    pub allowed_group: Option<String>,
    pub auto_register: Option<bool>,
    pub auto_redirect: Option<bool>,
    pub link_by_email: Option<bool>,
    pub disable_local_login: Option<bool>,
    /// PEM file of extra certificate authorities trusted for the provider.
    pub ca_file: Option<PathBuf>,
}

impl OidcOverrides {
    /// True when any OpenID Connect setting comes from the environment.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets print as "set"/"unset" through their own Debug impls.
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("public_url", &self.public_url.as_ref().map(Url::as_str))
            .field("base_path", &self.base_path)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("log", &self.log)
            .field("poll_interval", &self.poll_interval)
            .field("confirm_window", &self.confirm_window)
            .field("secret_key", &self.secret_key)
            .field("encryption_key", &self.encryption_key)
            .field("api_key", &self.api_key)
            .field("maxmind_license_key", &self.maxmind_license_key)
            .field("demo", &self.demo)
            .field("oidc", &self.oidc)
            .field("force_local_login", &self.force_local_login)
            .finish()
    }
}

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Raw key bytes decoded from hex or base64, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Vec<u8>);

impl KeyMaterial {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial({} bytes)", self.0.len())
    }
}

/// One configuration option: its name in the file, its documentation and its default.
pub struct OptionDoc {
    /// Key in the TOML file; the environment variable is `STREAMWARDEN_` + upper case.
    pub key: &'static str,
    /// Also readable from a file named by `STREAMWARDEN_<KEY>_FILE`.
    pub secret: bool,
    /// Default, as a user would write it (empty: unset).
    pub default: &'static str,
    pub doc: &'static str,
}

impl OptionDoc {
    pub fn env_name(&self) -> String {
        format!("{ENV_PREFIX}{}", self.key.to_ascii_uppercase())
    }
}

/// Every option, in the order the README lists them.
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        key: "data_dir",
        secret: false,
        default: "./data",
        doc: "Directory for the database, key files, `geoip/` and `backups/` (`/config` in the image).",
    },
    OptionDoc { key: "address", secret: false, default: "0.0.0.0", doc: "Address to listen on." },
    OptionDoc { key: "port", secret: false, default: "8484", doc: "Port to listen on." },
    OptionDoc {
        key: "public_url",
        secret: false,
        default: "",
        doc: "The URL users reach Streamwarden at, e.g. `https://streams.example.com` (links in alerts, OIDC redirect URI, `Secure` cookies when https).",
    },
    OptionDoc {
        key: "base_path",
        secret: false,
        default: "",
        doc: "Serve under a sub-path behind a reverse proxy, e.g. `/streamwarden`.",
    },
    OptionDoc {
        key: "trusted_proxies",
        secret: false,
        default: "",
        doc: "Comma-separated IPs or CIDRs of reverse proxies whose `X-Forwarded-For` is believed.",
    },
    OptionDoc {
        key: "log",
        secret: false,
        default: "info",
        doc: "Log filter: `error`, `warn`, `info`, `debug`, `trace`, or per module (`streamwarden=debug,info`).",
    },
    OptionDoc {
        key: "poll_interval",
        secret: false,
        default: "5",
        doc: "Seconds between two polls of each media server (at least 2).",
    },
    OptionDoc {
        key: "confirm_seconds",
        secret: false,
        default: "30",
        doc: "Seconds a new stream must last before it enters history and rules.",
    },
    OptionDoc {
        key: "secret_key",
        secret: true,
        default: "",
        doc: "Cookie key, 64 bytes as hex or base64. Generated into the data directory when unset.",
    },
    OptionDoc {
        key: "encryption_key",
        secret: true,
        default: "",
        doc: "Key encrypting stored tokens and passwords, 32 bytes as hex or base64. Generated into the data directory when unset.",
    },
    OptionDoc {
        key: "api_key",
        secret: true,
        default: "",
        doc: "An admin API key for scripts (`Authorization: Bearer ...`), at least 16 characters.",
    },
    OptionDoc {
        key: "maxmind_license_key",
        secret: true,
        default: "",
        doc: "MaxMind licence key: download and refresh GeoLite2 weekly.",
    },
    OptionDoc {
        key: "oidc_issuer",
        secret: false,
        default: "",
        doc: "OpenID Connect issuer URL, e.g. `https://auth.example.com/application/o/streamwarden/`. Setting it turns single sign-on on; each `STREAMWARDEN_OIDC_*` variable overrides and locks its field in Settings → Sign-in.",
    },
    OptionDoc {
        key: "oidc_client_id",
        secret: false,
        default: "",
        doc: "OpenID Connect client ID.",
    },
    OptionDoc {
        key: "oidc_client_secret",
        secret: true,
        default: "",
        doc: "OpenID Connect client secret (empty for a public client).",
    },
    OptionDoc {
        key: "oidc_scopes",
        secret: false,
        default: "openid profile email groups",
        doc: "Scopes to request, separated by spaces.",
    },
    OptionDoc {
        key: "oidc_button_text",
        secret: false,
        default: "Sign in with single sign-on",
        doc: "Text of the sign-in button.",
    },
    OptionDoc {
        key: "oidc_groups_claim",
        secret: false,
        default: "groups",
        doc: "Claim holding the user's groups (a dotted path such as `realm_access.roles` reaches nested claims).",
    },
    OptionDoc {
        key: "oidc_admin_group",
        secret: false,
        default: "",
        doc: "Members of this group sign in as admins; everyone else as viewers.",
    },
    OptionDoc {
        key: "oidc_allowed_group",
        secret: false,
        default: "",
        doc: "Only members of this group (or the admin group) may sign in. Empty: anyone the provider lets through.",
    },
    OptionDoc {
        key: "oidc_auto_register",
        secret: false,
        default: "false",
        doc: "Create an account on the first single sign-on of someone who has none.",
    },
    OptionDoc {
        key: "oidc_auto_redirect",
        secret: false,
        default: "false",
        doc: "Send visitors of the sign-in page straight to the provider (`/login?local=1` still shows the form).",
    },
    OptionDoc {
        key: "oidc_link_by_email",
        secret: false,
        default: "false",
        doc: "Link a first single sign-on to the existing account with the same verified email address.",
    },
    OptionDoc {
        key: "oidc_disable_local_login",
        secret: false,
        default: "false",
        doc: "Turn password sign-in off (refused until an admin has signed in through OpenID Connect).",
    },
    OptionDoc {
        key: "oidc_ca_file",
        secret: false,
        default: "",
        doc: "PEM file of extra certificate authorities to trust for the provider (a private CA).",
    },
    OptionDoc {
        key: "force_local_login",
        secret: false,
        default: "false",
        doc: "Break-glass: `true` re-enables password sign-in whatever Settings → Sign-in says.",
    },
];

/// Not an option of the struct: names the TOML file to read.
pub const CONFIG_FILE_VAR: &str = "STREAMWARDEN_CONFIG";

/// Variables read elsewhere (tests and tools) that must not be reported as unknown.
const OTHER_KNOWN_VARS: &[&str] = &[CONFIG_FILE_VAR];

/// A configuration problem, naming where the bad value came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// `STREAMWARDEN_PORT`, `STREAMWARDEN_API_KEY_FILE (/run/secrets/k)` or `file.toml: port`.
    pub origin: String,
    pub message: String,
}

/// The loaded configuration and the warnings worth logging once logging is up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Where a raw value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    Env(String),
    EnvFile { var: String, path: String },
    File { path: String, key: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(var) => f.write_str(var),
            Origin::EnvFile { var, path } => write!(f, "{var} ({path})"),
            Origin::File { path, key } => write!(f, "{path}: {key}"),
        }
    }
}

impl Config {
    /// Loads from the process environment (and the file `STREAMWARDEN_CONFIG` names).
    pub fn load() -> Result<Loaded, ConfigError> {
        let env: BTreeMap<String, String> =
            std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        Self::from_env(&env)
    }

    /// Loads from an explicit environment, reading the file it may name. Pure apart from
    /// reading that file and `_FILE` secrets, so tests need not touch the process environment.
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let mut raw: BTreeMap<&'static str, (Origin, String)> = BTreeMap::new();

        if let Some(path) = env.get(CONFIG_FILE_VAR).filter(|p| !p.is_empty()) {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                origin: CONFIG_FILE_VAR.to_owned(),
                message: format!("cannot read {path}: {e}"),
            })?;
            read_toml(path, &text, &mut raw, &mut warnings)?;
        }

        let known: Vec<String> = OPTIONS
            .iter()
            .flat_map(|o| {
                let name = o.env_name();
                if o.secret { vec![format!("{name}_FILE"), name] } else { vec![name] }
            })
            .chain(OTHER_KNOWN_VARS.iter().map(|s| (*s).to_owned()))
            .collect();
        for name in env.keys() {
            if !known.contains(name) && !name.starts_with("STREAMWARDEN_TEST_") {
                warnings.push(format!("ignoring unknown variable {name}"));
            }
        }

        for option in OPTIONS {
            let name = option.env_name();
            let file_var = format!("{name}_FILE");
            let direct = env.get(&name);
            let from_file = if option.secret { env.get(&file_var) } else { None };
            match (direct, from_file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError {
                        origin: name.clone(),
                        message: format!("set either {name} or {file_var}, not both"),
                    });
                }
                (Some(value), None) => {
                    raw.insert(option.key, (Origin::Env(name), value.clone()));
                }
                (None, Some(path)) => {
                    let origin = Origin::EnvFile { var: file_var, path: path.clone() };
                    let value = std::fs::read_to_string(path).map_err(|e| ConfigError {
                        origin: origin.to_string(),
                        message: format!("cannot read the file: {e}"),
                    })?;
                    // Files written by editors and `echo` end with a newline that is no part
                    // of the secret.
                    raw.insert(option.key, (origin, value.trim_end_matches(['\n', '\r']).into()));
                }
                (None, None) => {}
            }
        }

        let config = build(&raw)?;
        Ok(Loaded { config, warnings })
    }

    /// A configuration for tests: everything default, data in `data_dir`, fixed keys so no
    /// key generation runs, and the poll interval at its floor.
    pub fn for_tests(data_dir: &Path) -> Self {
        let mut config = build(&BTreeMap::new()).expect("defaults are valid");
        data_dir.clone_into(&mut config.data_dir);
        config.address = IpAddr::from([127, 0, 0, 1]);
        config
    }

    /// Path of the SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("streamwarden.db")
    }

    /// True when cookies must carry `Secure` (the public URL is https).
    pub fn is_https(&self) -> bool {
        self.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
    }

    /// `url` prefixed with the base path, e.g. `path("/history")` is `/sw/history`.
    pub fn path(&self, url: &str) -> String {
        format!("{}{url}", self.base_path)
    }
}

/// Reads the TOML file into raw string values, refusing keys we do not know.
fn read_toml(
    path: &str,
    text: &str,
    raw: &mut BTreeMap<&'static str, (Origin, String)>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
        origin: path.to_owned(),
        message: format!("not valid TOML: {}", e.message()),
    })?;
    for (key, value) in table {
        let Some(option) = OPTIONS.iter().find(|o| o.key == key) else {
            warnings.push(format!("{path}: ignoring unknown key {key}"));
            continue;
        };
        let origin = Origin::File { path: path.to_owned(), key: key.clone() };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s),
                        other => {
                            return Err(ConfigError {
                                origin: origin.to_string(),
                                message: format!("expected a list of strings, found {other}"),
                            });
                        }
                    }
                }
                parts.join(",")
            }
            other => {
                return Err(ConfigError {
                    origin: origin.to_string(),
                    message: format!("expected a string or a number, found {}", other.type_str()),
                });
            }
        };
        raw.insert(option.key, (origin, text));
    }
    Ok(())
}

/// Parses every option from its raw value or its default.
fn build(raw: &BTreeMap<&'static str, (Origin, String)>) -> Result<Config, ConfigError> {
    // Applies `parse` to the raw value if there is one; the error names its origin.
    fn field<T>(
        value: Option<(&Origin, &str)>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match value {
            None => Ok(None),
            Some((origin, text)) => parse(text.trim())
                .map(Some)
                .map_err(|message| ConfigError { origin: origin.to_string(), message }),
        }
    }

    let get = |key: &'static str| -> Option<(&Origin, &str)> {
        raw.get(key).map(|(o, v)| (o, v.as_str()))
    };
    let data_dir = field(get("data_dir"), parse_path)?.unwrap_or_else(|| PathBuf::from("./data"));
    let address = field(get("address"), parse_address)?.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let port = field(get("port"), parse_port)?.unwrap_or(DEFAULT_PORT);
    let public_url = field(get("public_url"), parse_public_url)?.flatten();
    let base_path = field(get("base_path"), parse_base_path)?.unwrap_or_default();
    let trusted_proxies = field(get("trusted_proxies"), parse_networks)?.unwrap_or_default();
    let log = field(get("log"), parse_log_filter)?.unwrap_or_else(|| "info".to_owned());
    let poll_interval =
        field(get("poll_interval"), parse_poll_interval)?.unwrap_or(Duration::from_secs(5));
    let confirm_window = field(get("confirm_seconds"), |s| parse_seconds(s, 0, 3600))?
        .unwrap_or(Duration::from_secs(30));
    let secret_key = field(get("secret_key"), |s| parse_key(s, 64..=64))?.flatten();
    let encryption_key = field(get("encryption_key"), |s| parse_key(s, 32..=32))?.flatten();
    let api_key = field(get("api_key"), parse_api_key)?.flatten();
    let maxmind_license_key =
        field(get("maxmind_license_key"), |s| Ok(non_empty(s).map(Secret::new)))?.flatten();
    let text = |key| field(get(key), |s| Ok(non_empty(s).map(str::to_owned))).map(Option::flatten);
    let oidc = OidcOverrides {
        issuer: field(get("oidc_issuer"), parse_issuer)?.flatten(),
        client_id: text("oidc_client_id")?,
        client_secret: field(get("oidc_client_secret"), |s| Ok(non_empty(s).map(Secret::new)))?
            .flatten(),
        scopes: text("oidc_scopes")?,
        button_text: text("oidc_button_text")?,
        groups_claim: text("oidc_groups_claim")?,
        admin_group: text("oidc_admin_group")?,
        allowed_group: text("oidc_allowed_group")?,
        auto_register: field(get("oidc_auto_register"), parse_bool)?,
        auto_redirect: field(get("oidc_auto_redirect"), parse_bool)?,
        link_by_email: field(get("oidc_link_by_email"), parse_bool)?,
        disable_local_login: field(get("oidc_disable_local_login"), parse_bool)?,
        ca_file: field(get("oidc_ca_file"), parse_path)?,
    };
    let force_local_login = field(get("force_local_login"), parse_bool)?.unwrap_or(false);

    if let (Some(url), false) = (&public_url, base_path.is_empty()) {
        // The public URL is what the browser sees, so it must include the sub-path.
        if !url.path().trim_end_matches('/').ends_with(&base_path) {
            let origin = get("public_url").map(|(o, _)| o.to_string()).unwrap_or_default();
            return Err(ConfigError {
                origin,
                message: format!("{url} does not end with the base path {base_path}"),
            });
        }
    }

    Ok(Config {
        data_dir,
        address,
        port,
        public_url,
        base_path,
        trusted_proxies,
        log,
        poll_interval,
        confirm_window,
        secret_key,
        encryption_key,
        api_key,
        maxmind_license_key,
        demo: false,
        oidc,
        force_local_login,
    })
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn parse_path(s: &str) -> Result<PathBuf, String> {
    non_empty(s).map(PathBuf::from).ok_or_else(|| "must not be empty".to_owned())
}

fn parse_address(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("{s:?} is not an IP address (e.g. 0.0.0.0 or ::)"))
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("{s:?} is not a port number (1 to 65535)")),
    }
}

fn parse_public_url(s: &str) -> Result<Option<Url>, String> {
    let Some(s) = non_empty(s) else { return Ok(None) };
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} must start with http:// or https://"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{s:?} must not have a query or fragment"));
    }
    // Stored without a trailing slash so that `public_url + path` is always right.
    let trimmed = s.trim_end_matches('/');
    Url::parse(trimmed).map(Some).map_err(|e| format!("{s:?} is not a URL: {e}"))
}

fn parse_base_path(s: &str) -> Result<String, String> {
    let trimmed = s.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.split('/').all(|seg| {
        !seg.is_empty()
            && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
            && seg != "."
            && seg != ".."
    });
    if !valid {
        return Err(format!(
            "{s:?} is not a usable path: letters, digits, '-', '_', '.', '~' and '/' only"
        ));
    }
    Ok(format!("/{trimmed}"))
}

fn parse_networks(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            part.parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{part:?} is not an IP address or CIDR network"))
        })
        .collect()
}

fn parse_log_filter(s: &str) -> Result<String, String> {
    let s = non_empty(s).ok_or_else(|| "must not be empty".to_owned())?;
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("{s:?} is not a log filter: {e}"))
}

fn parse_seconds(s: &str, min: u64, max: u64) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!("{s:?} is not a number of seconds from {min} to {max}")),
    }
}

fn parse_poll_interval(s: &str) -> Result<Duration, String> {
    parse_seconds(s, MIN_POLL_INTERVAL.as_secs(), 3600)
}

/// Accepts hex or base64 (standard or URL-safe, padded or not).
fn parse_key(
    s: &str,
    lengths: std::ops::RangeInclusive<usize>,
) -> Result<Option<KeyMaterial>, String> {
    let Some(s) = non_empty(s) else { return Ok(None) };
    let expected = || {
        let n = lengths.start();
        format!("must be {n} random bytes written as {} hex digits or base64", n * 2)
    };
    let decoded = decode_hex(s)
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .or_else(|| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s).ok())
        .or_else(|| base64::engine::general_purpose::URL_SAFE.decode(s).ok())
        .or_else(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok())
        .ok_or_else(expected)?;
    if !lengths.contains(&decoded.len()) {
        return Err(format!("{} (found {} bytes)", expected(), decoded.len()));
    }
    Ok(Some(KeyMaterial::new(decoded)))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

fn parse_issuer(s: &str) -> Result<Option<String>, String> {
    let Some(s) = non_empty(s) else { return Ok(None) };
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} must start with https:// (or http:// on a trusted network)"));
    }
    // Kept exactly as given: the provider's discovery document decides the issuer.
    Ok(Some(s.to_owned()))
}

fn parse_api_key(s: &str) -> Result<Option<Secret>, String> {
    let Some(s) = non_empty(s) else { return Ok(None) };
    if s.len() < 16 {
        return Err("must be at least 16 characters long".to_owned());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".to_owned());
    }
    Ok(Some(Secret::new(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_env(&env(pairs)).map(|l| l.config)
    }

    #[test]
    fn defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.address.to_string(), "0.0.0.0");
        assert_eq!(c.port, DEFAULT_PORT);
        assert_eq!(c.base_path, "");
        assert_eq!(c.poll_interval, Duration::from_secs(5));
        assert_eq!(c.confirm_window, Duration::from_secs(30));
        assert!(c.public_url.is_none() && c.secret_key.is_none() && c.api_key.is_none());
    }

    #[test]
    fn every_malformed_value_names_its_variable() {
        let cases = [
            ("STREAMWARDEN_DATA_DIR", ""),
            ("STREAMWARDEN_ADDRESS", "localhost"),
            ("STREAMWARDEN_PORT", "abc"),
            ("STREAMWARDEN_PORT", "0"),
            ("STREAMWARDEN_PORT", "70000"),
            ("STREAMWARDEN_PUBLIC_URL", "ftp://x"),
            ("STREAMWARDEN_PUBLIC_URL", "not a url"),
            ("STREAMWARDEN_BASE_PATH", "/a b"),
            ("STREAMWARDEN_BASE_PATH", "/../x"),
            ("STREAMWARDEN_TRUSTED_PROXIES", "10.0.0.0/8, nonsense"),
            ("STREAMWARDEN_LOG", "info,[[["),
            ("STREAMWARDEN_POLL_INTERVAL", "1"),
            ("STREAMWARDEN_POLL_INTERVAL", "5s"),
            ("STREAMWARDEN_CONFIRM_SECONDS", "-1"),
            ("STREAMWARDEN_SECRET_KEY", "tooshort"),
            ("STREAMWARDEN_ENCRYPTION_KEY", "00ff"),
            ("STREAMWARDEN_API_KEY", "short"),
            ("STREAMWARDEN_OIDC_ISSUER", "auth.example.com"),
            ("STREAMWARDEN_OIDC_AUTO_REGISTER", "maybe"),
            ("STREAMWARDEN_OIDC_AUTO_REDIRECT", "2"),
            ("STREAMWARDEN_OIDC_LINK_BY_EMAIL", "y"),
            ("STREAMWARDEN_OIDC_DISABLE_LOCAL_LOGIN", "nope"),
            ("STREAMWARDEN_OIDC_CA_FILE", ""),
            ("STREAMWARDEN_FORCE_LOCAL_LOGIN", "please"),
        ];
        // Options that take any text have no malformed value.
        let free_text = [
            "maxmind_license_key",
            "oidc_client_id",
            "oidc_client_secret",
            "oidc_scopes",
            "oidc_button_text",
            "oidc_groups_claim",
            "oidc_admin_group",
            "oidc_allowed_group",
        ];
        // Every option that can be malformed is covered.
        for option in OPTIONS.iter().filter(|o| !free_text.contains(&o.key)) {
            let name = option.env_name();
            assert!(cases.iter().any(|(var, _)| *var == name), "no bad value for {name}");
        }
        for (var, value) in cases {
            let err = load(&[(var, value)]).expect_err(var);
            assert_eq!(err.origin, var, "{var}={value:?} gave {err}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn values_are_parsed() {
        let key64 = "ab".repeat(64);
        let c = load(&[
            ("STREAMWARDEN_PORT", " 9000 "),
            ("STREAMWARDEN_ADDRESS", "::"),
            ("STREAMWARDEN_PUBLIC_URL", "https://streams.example.com/sw/"),
            ("STREAMWARDEN_BASE_PATH", "sw/"),
            ("STREAMWARDEN_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.5,fd00::/8"),
            ("STREAMWARDEN_POLL_INTERVAL", "2"),
            ("STREAMWARDEN_SECRET_KEY", &key64),
            ("STREAMWARDEN_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ])
        .unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.address.to_string(), "::");
        assert_eq!(c.public_url.as_ref().unwrap().as_str(), "https://streams.example.com/sw");
        assert!(c.is_https());
        assert_eq!(c.base_path, "/sw");
        assert_eq!(c.path("/history"), "/sw/history");
        assert_eq!(c.trusted_proxies.len(), 3);
        assert_eq!(c.trusted_proxies[1].to_string(), "192.168.1.5/32");
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.secret_key.unwrap().bytes(), &[0xab; 64][..]);
        assert_eq!(c.encryption_key.unwrap().bytes(), &(0..32).collect::<Vec<u8>>()[..]);
    }

    #[test]
    fn public_url_must_carry_the_base_path() {
        let err = load(&[
            ("STREAMWARDEN_PUBLIC_URL", "https://streams.example.com"),
            ("STREAMWARDEN_BASE_PATH", "/sw"),
        ])
        .unwrap_err();
        assert_eq!(err.origin, "STREAMWARDEN_PUBLIC_URL");
    }

    #[test]
    fn file_then_env_layering() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sw.toml");
        std::fs::write(
            &file,
            "port = 7000\nlog = \"debug\"\ntrusted_proxies = [\"10.0.0.1\", \"10.0.1.0/24\"]\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let c = load(&[(CONFIG_FILE_VAR, path), ("STREAMWARDEN_LOG", "warn")]).unwrap();
        assert_eq!(c.port, 7000, "file beats default");
        assert_eq!(c.log, "warn", "environment beats file");
        assert_eq!(c.trusted_proxies.len(), 2);

        std::fs::write(&file, "port = \"seven\"\n").unwrap();
        let err = load(&[(CONFIG_FILE_VAR, path)]).unwrap_err();
        assert_eq!(err.origin, format!("{path}: port"));

        std::fs::write(&file, "port = [").unwrap();
        let err = load(&[(CONFIG_FILE_VAR, path)]).unwrap_err();
        assert_eq!(err.origin, path);

        let err = load(&[(CONFIG_FILE_VAR, "/nonexistent/sw.toml")]).unwrap_err();
        assert_eq!(err.origin, CONFIG_FILE_VAR);
    }

    #[test]
    fn secrets_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("api_key");
        std::fs::write(&file, "0123456789abcdef-secret\n").unwrap();
        let path = file.to_str().unwrap();
        let c = load(&[("STREAMWARDEN_API_KEY_FILE", path)]).unwrap();
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "0123456789abcdef-secret");
        assert!(!format!("{c:?}").contains("secret\""), "Debug must not print secrets");

        let both = load(&[("STREAMWARDEN_API_KEY_FILE", path), ("STREAMWARDEN_API_KEY", "x")]);
        assert_eq!(both.unwrap_err().origin, "STREAMWARDEN_API_KEY");

        let missing = load(&[("STREAMWARDEN_API_KEY_FILE", "/nonexistent")]).unwrap_err();
        assert!(missing.origin.starts_with("STREAMWARDEN_API_KEY_FILE"), "{missing}");
        // A _FILE variant exists only for secrets.
        let warned = Config::from_env(&env(&[("STREAMWARDEN_PORT_FILE", path)])).unwrap();
        assert_eq!(warned.warnings, ["ignoring unknown variable STREAMWARDEN_PORT_FILE"]);
    }

    #[test]
    fn the_readme_documents_every_variable() {
        let readme = include_str!("../README.md");
        for option in OPTIONS {
            let row = format!("| `{}`", option.env_name());
            assert!(readme.contains(&row), "README lacks a row for {}", option.env_name());
        }
        assert!(readme.contains(&format!("| `{CONFIG_FILE_VAR}`")));
    }

    #[test]
    fn unknown_variables_are_warned_about() {
        let loaded = Config::from_env(&env(&[("STREAMWARDEN_PROT", "1")])).unwrap();
        assert_eq!(loaded.warnings, ["ignoring unknown variable STREAMWARDEN_PROT"]);
    }
}
