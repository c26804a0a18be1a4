//! Structured logs with `tracing`, filtered by `STREAMWARDEN_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `filter` was validated with the configuration.
pub fn init(filter: &str) {
    let filter =
        EnvFilter::try_new(with_quiet_rocket(filter)).unwrap_or_else(|_| EnvFilter::new("info"));
    // Docker and Unraid show stdout; colours only when a person is watching a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi)
        .try_init();
}

/// Rocket logs every request and a banner at info level, and a 404 as an error; we log
/// requests ourselves (at debug), so Rocket is kept to warnings unless asked for by name.
fn with_quiet_rocket(filter: &str) -> String {
    if filter.contains("rocket") {
        filter.to_owned()
    } else {
        format!("{filter},rocket=warn,rocket::server=off,rocket::launch=off")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rocket_is_quiet_unless_named() {
        assert_eq!(
            super::with_quiet_rocket("debug"),
            "debug,rocket=warn,rocket::server=off,rocket::launch=off"
        );
        assert_eq!(super::with_quiet_rocket("info,rocket=debug"), "info,rocket=debug");
    }
}
