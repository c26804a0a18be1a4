//! Keeps GeoLite2 City and ASN fresh with a MaxMind licence key: downloads each edition when
//! its file is missing or a week old, checks it opens, and renames it into place, so the
//! [`super::GeoIp`] service swaps it in on its next refresh. Where the box has no internet a
//! failed download is reported on the settings page and nothing else changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::GeoIp;
use crate::crypto::SecretBox;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::tasks::StopSignal;

/// MaxMind's download endpoint.
pub const DEFAULT_BASE_URL: &str = "https://download.maxmind.com/app/geoip_download";
/// The free editions we fetch.
pub const EDITIONS: [&str; 2] = ["GeoLite2-City", "GeoLite2-ASN"];
/// A file younger than this is fresh (MaxMind publishes twice a week).
pub const REFRESH_AFTER: Duration = Duration::from_hours(7 * 24);
/// The settings key holding a licence key typed in Settings → GeoIP (sealed).
pub const LICENSE_SETTING: &str = "geoip.license_key";
/// Sealing purpose of the stored licence key.
pub const LICENSE_PURPOSE: &str = "geoip.license_key";
/// Largest archive we accept (GeoLite2-City is about 40 MB packed).
const MAX_ARCHIVE: usize = 256 * 1024 * 1024;

/// The last attempt, for the settings page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateState {
    /// Unix milliseconds.
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
}

/// True when `edition`'s file in `dir` is missing or older than [`REFRESH_AFTER`].
pub fn is_due(dir: &Path, edition: &str) -> bool {
    let path = dir.join(format!("{edition}.mmdb"));
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_none_or(|age| age >= REFRESH_AFTER)
}

/// Unix milliseconds of `path`'s last change.
fn modified_ms(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// When the next download is due (Unix milliseconds): a week after the older edition's
/// file was written, or `now` when one is missing.
pub fn next_due_at(dir: &Path, now: i64) -> i64 {
    let week = i64::try_from(REFRESH_AFTER.as_millis()).unwrap_or(i64::MAX);
    EDITIONS
        .iter()
        .map(|e| {
            modified_ms(&dir.join(format!("{e}.mmdb"))).map_or(now, |m| m.saturating_add(week))
        })
        .min()
        .unwrap_or(now)
}

/// The newest write of an edition's file in `dir` (Unix milliseconds): when the files
/// were last downloaded or dropped in, across restarts.
pub fn files_written_at(dir: &Path) -> Option<i64> {
    EDITIONS.iter().filter_map(|e| modified_ms(&dir.join(format!("{e}.mmdb")))).max()
}

/// A licence key as MaxMind issues them: letters, digits and underscores.
pub fn check_license_key(raw: &str) -> AppResult<String> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(AppError::validation(
            "license_key",
            "paste the licence key from your MaxMind account",
        ));
    }
    if !(10..=100).contains(&key.len())
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(AppError::validation(
            "license_key",
            "a MaxMind licence key is 10 to 100 letters, digits or underscores",
        ));
    }
    Ok(key.to_owned())
}

/// Downloads one edition into `dir`; returns the file written. Errors never carry the URL:
/// its query holds the licence key, and they reach the settings page, the audit log and the
/// log.
pub async fn download_edition(
    client: &reqwest::Client,
    base_url: &str,
    license_key: &str,
    edition: &str,
    dir: &Path,
) -> Result<PathBuf, String> {
    let url = reqwest::Url::parse_with_params(
        base_url,
        &[("edition_id", edition), ("license_key", license_key), ("suffix", "tar.gz")],
    )
    .map_err(|e| format!("bad download URL: {e}"))?;
    let response = client.get(url).timeout(Duration::from_mins(5)).send().await.map_err(|e| {
        format!("{edition}: cannot reach MaxMind: {}", root_cause(&e.without_url()))
    })?;
    match response.status().as_u16() {
        200 => {}
        401 | 403 => return Err(format!("{edition}: MaxMind refused the licence key")),
        code => return Err(format!("{edition}: MaxMind answered HTTP {code}")),
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("{edition}: download broke off: {}", root_cause(&e.without_url())))?;
    if bytes.len() > MAX_ARCHIVE {
        return Err(format!("{edition}: the archive is larger than expected"));
    }
    let (dir, edition) = (dir.to_owned(), edition.to_owned());
    tokio::task::spawn_blocking(move || install(&bytes, &edition, &dir))
        .await
        .map_err(|e| format!("installing the database failed: {e}"))?
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Unpacks `<edition>.mmdb` from a `.tar.gz`, checks that it opens, and moves it into place.
pub fn install(archive: &[u8], edition: &str, dir: &Path) -> Result<PathBuf, String> {
    use std::io::Read as _;
    let wanted = format!("{edition}.mmdb");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar.entries().map_err(|e| format!("{edition}: not a tar.gz archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{edition}: broken archive: {e}"))?;
        let is_db = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy() == wanted))
            .unwrap_or(false);
        if !is_db {
            continue;
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| format!("{edition}: broken archive: {e}"))?;
        maxminddb::Reader::from_source(data.as_slice())
            .map_err(|e| format!("{edition}: the downloaded database does not open: {e}"))?;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let tmp = dir.join(format!(".{wanted}.part"));
        let target = dir.join(&wanted);
        std::fs::write(&tmp, &data).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &target)
            .map_err(|e| format!("cannot move {} into place: {e}", target.display()))?;
        return Ok(target);
    }
    Err(format!("{edition}: the archive holds no {wanted}"))
}

/// The weekly updater: a licence key from the environment wins over one set in Settings.
pub struct Updater {
    geo: Arc<GeoIp>,
    db: Db,
    secrets: SecretBox,
    env_key: Option<String>,
    base_url: String,
    client: reqwest::Client,
    state: Mutex<UpdateState>,
    /// One download at a time: "Update now" and the hourly check share the temporary files.
    downloading: tokio::sync::Mutex<()>,
}

impl Updater {
    pub fn new(geo: Arc<GeoIp>, db: Db, secrets: SecretBox, env_key: Option<String>) -> Self {
        Self {
            geo,
            db,
            secrets,
            env_key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            client: reqwest::Client::new(),
            state: Mutex::new(UpdateState::default()),
            downloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Points the updater at another server (tests).
    #[must_use]
    pub fn with_base_url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.base_url);
        self
    }

    pub fn state(&self) -> UpdateState {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// True when the key comes from `STREAMWARDEN_MAXMIND_LICENSE_KEY` (the page locks it).
    pub fn key_from_env(&self) -> bool {
        self.env_key.is_some()
    }

    /// The licence key in force, if any.
    pub async fn license_key(&self) -> Option<String> {
        if let Some(key) = &self.env_key {
            return Some(key.clone());
        }
        let sealed: Option<String> =
            self.db.read(|c| db::settings::get(c, LICENSE_SETTING)).await.ok().flatten();
        sealed.and_then(|s| self.secrets.open(LICENSE_PURPOSE, &s).ok())
    }

    /// True when a licence key is stored in Settings (sealed), whatever the environment says.
    pub async fn stored_key_set(&self) -> AppResult<bool> {
        Ok(self.db.read(|c| db::settings::get::<String>(c, LICENSE_SETTING)).await?.is_some())
    }

    /// Stores a licence key typed in Settings → GeoIP (sealed), or removes it with `None`.
    /// Refused while the environment sets one, which would win anyway.
    pub async fn set_license_key(&self, key: Option<&str>) -> AppResult<()> {
        if self.key_from_env() {
            return Err(AppError::validation(
                "license_key",
                "the licence key comes from STREAMWARDEN_MAXMIND_LICENSE_KEY; change it there",
            ));
        }
        match key {
            Some(raw) => {
                let sealed = self.secrets.seal(LICENSE_PURPOSE, &check_license_key(raw)?);
                self.db.write(move |c| db::settings::put(c, LICENSE_SETTING, &sealed)).await
            }
            None => self.db.write(|c| db::settings::delete(c, LICENSE_SETTING)).await,
        }
    }

    /// "Update now": downloads every edition at once. Without a licence key this is a
    /// validation error on `license_key`; a failed download is an upstream error naming why.
    pub async fn update_now(&self) -> AppResult<()> {
        if self.license_key().await.is_none() {
            return Err(AppError::validation("license_key", "set a MaxMind licence key first"));
        }
        self.update(true)
            .await
            .map(|_| ())
            .map_err(|e| AppError::Upstream { server: "MaxMind".into(), message: e })
    }

    /// When the next automatic download is due (Unix milliseconds), or `None` without a
    /// licence key. The check runs hourly, so it happens within the hour after.
    pub async fn next_due_at(&self) -> Option<i64> {
        self.license_key().await?;
        Some(next_due_at(self.geo.dir(), crate::time::now_ms()))
    }

    /// Downloads what is due (or everything, with `force`). Ok(false): nothing to do.
    pub async fn update(&self, force: bool) -> Result<bool, String> {
        let Some(key) = self.license_key().await else {
            return Ok(false);
        };
        let _one_at_a_time = self.downloading.lock().await;
        let dir = self.geo.dir().to_owned();
        // Checked after waiting: a download that just finished made the files fresh.
        let due: Vec<&str> = EDITIONS.into_iter().filter(|e| force || is_due(&dir, e)).collect();
        if due.is_empty() {
            return Ok(false);
        }
        let now = crate::time::now_ms();
        let mut result = Ok(true);
        for edition in due {
            if let Err(e) =
                download_edition(&self.client, &self.base_url, &key, edition, &dir).await
            {
                tracing::warn!(error = %e, "GeoLite2 download failed");
                result = Err(e);
            }
        }
        self.geo.refresh();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.last_attempt_at = Some(now);
        match &result {
            Ok(_) => {
                state.last_success_at = Some(now);
                state.last_error = None;
            }
            Err(e) => state.last_error = Some(e.clone()),
        }
        result
    }

    /// Notices database files that changed (dropped in by hand, or downloaded) every
    /// minute, and checks every hour whether a download is due, until shutdown.
    pub async fn run(self: Arc<Self>, mut stop: StopSignal) {
        let mut minutes = 0_u32;
        loop {
            if minutes.is_multiple_of(60) {
                let _ = self.update(false).await;
            }
            self.geo.refresh();
            if stop.sleep(Duration::from_mins(1)).await {
                break;
            }
            minutes = minutes.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(edition: &str, data: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{edition}_20270101/{edition}.mmdb"), data)
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn licence_keys_and_the_schedule() {
        assert_eq!(check_license_key(" abcDEF_123456 ").unwrap(), "abcDEF_123456");
        for bad in ["", "   ", "short", "has space in it", "semi;colon;key"] {
            assert!(check_license_key(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_due_at(dir.path(), 5), 5, "missing files are due now");
        assert_eq!(files_written_at(dir.path()), None);
        std::fs::write(dir.path().join("GeoLite2-City.mmdb"), b"x").unwrap();
        assert_eq!(next_due_at(dir.path(), 5), 5, "the ASN file is still missing");
        std::fs::write(dir.path().join("GeoLite2-ASN.mmdb"), b"x").unwrap();
        let written = files_written_at(dir.path()).unwrap();
        let week = i64::try_from(REFRESH_AFTER.as_millis()).unwrap();
        let due = next_due_at(dir.path(), 5);
        assert!((written + week - 5_000..=written + week).contains(&due), "{due} vs {written}");
    }

    #[tokio::test]
    async fn a_broken_download_names_no_licence_key() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        #[expect(clippy::disallowed_methods, reason = "a one-shot fake server for this test")]
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0_u8; 4096];
            let _ = socket.read(&mut request).await;
            // Promises 1000 bytes, sends 3 and hangs up.
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc").await;
        });
        let dir = tempfile::tempdir().unwrap();
        let client = reqwest::Client::new();
        let key = "secret_key_000123";
        let base = format!("http://{addr}/app/geoip_download");
        let broken = download_edition(&client, &base, key, "GeoLite2-City", dir.path()).await;
        let message = broken.unwrap_err();
        assert!(message.contains("download broke off"), "{message}");
        assert!(!message.contains(key), "{message}");
        let closed =
            download_edition(&client, "http://127.0.0.1:9/x", key, "GeoLite2-City", dir.path())
                .await;
        let message = closed.unwrap_err();
        assert!(message.contains("cannot reach MaxMind") && !message.contains(key), "{message}");
    }

    #[tokio::test]
    async fn downloads_unpacks_checks_and_swaps_in() {
        let city = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/geoip/GeoLite2-City-Test.mmdb"
        ))
        .unwrap();
        let good = archive("GeoLite2-City", &city);
        let (addr, _task) = crate::sim::http::serve(move |req| {
            let good = good.clone();
            async move {
                use crate::sim::http::Response;
                match (req.query("license_key"), req.query("edition_id")) {
                    (Some("right"), Some("GeoLite2-City")) => {
                        Response::new(200, "application/gzip", good)
                    }
                    (Some("right"), _) => {
                        Response::new(200, "application/gzip", b"nonsense".to_vec())
                    }
                    _ => Response::empty(401),
                }
            }
        })
        .await
        .unwrap();
        let base = format!("http://{addr}/app/geoip_download");
        let dir = tempfile::tempdir().unwrap();
        let client = reqwest::Client::new();
        let err = download_edition(&client, &base, "wrong", "GeoLite2-City", dir.path()).await;
        assert!(err.unwrap_err().contains("refused the licence key"));
        let err = download_edition(&client, &base, "right", "GeoLite2-ASN", dir.path()).await;
        assert!(
            err.unwrap_err().contains("not a tar.gz")
                || dir.path().read_dir().unwrap().count() == 0
        );
        assert!(is_due(dir.path(), "GeoLite2-City"));
        let path =
            download_edition(&client, &base, "right", "GeoLite2-City", dir.path()).await.unwrap();
        assert_eq!(path, dir.path().join("GeoLite2-City.mmdb"));
        assert!(!is_due(dir.path(), "GeoLite2-City"));
        let geo = GeoIp::new(dir.path().to_owned());
        assert_eq!(
            geo.lookup("216.160.83.56".parse().unwrap()).geo.unwrap().city.as_deref(),
            Some("Milton")
        );
        // A database that does not open never replaces a good one.
        let junk = archive("GeoLite2-City", b"not a database");
        assert!(install(&junk, "GeoLite2-City", dir.path()).unwrap_err().contains("does not open"));
        assert!(geo.lookup("216.160.83.56".parse().unwrap()).geo.is_some());
    }
}
