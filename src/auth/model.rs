//! Who may see what, as plain types: the role of an account and the media users whose data
//! a principal may see. No request guards here, so the database layer and the poller can
//! use them.

/// Role of a Streamwarden account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read-only: dashboard and history of their own linked media user.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Parses `admin` or `viewer`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
