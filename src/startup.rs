//! Why the server cannot start. Its own low module, so that anything that runs at start
//! (key files, the database) can fail with it without importing the crate root.

/// A reason the server cannot start, as one line for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);
