//! Notifications: email, Pushover, ntfy, Discord and webhooks that never lose an alert.
//!
//! How an alert travels:
//!
//! 1. The poller or the rules engine builds an [`Event`] and stores it with [`enqueue`] inside
//!    the transaction that records what caused it (a finished play, a violation), so that an
//!    alert is never lost between two writes; other callers use [`Notifier::publish`].
//! 2. Publishing routes the event ([`routing`]: each channel's events and minimum severity,
//!    or the rule's named channels), applies cooldowns, and stores one message per channel
//!    in the outbox (SQLite) in one transaction. Then it wakes the delivery worker. It never
//!    waits for a network.
//! 3. The [`worker::Worker`] (a background task) sends due messages, one at a time per
//!    channel and channels in parallel, each with a timeout. A failure is retried with
//!    exponential backoff (and never sooner than a `Retry-After`); after a bounded number of
//!    attempts the message is marked failed. The outbox survives restarts and is also the
//!    delivery log shown in Settings → Notifications.
//!
//! One [`channel::Channel`] trait, one module per channel: [`email`], [`pushover`], [`ntfy`],
//! [`discord`], [`webhook`]. Secrets in channel configs are sealed with
//! [`crate::crypto::SecretBox`] and never leave the server.

pub mod channel;
pub mod discord;
pub mod email;
pub mod event;
pub mod http;
pub mod message;
pub mod notifier;
pub mod ntfy;
pub mod pushover;
pub mod routing;
pub mod store;
pub mod webhook;
pub mod worker;

use std::fmt;

use rocket::request::FromParam;
use serde::{Deserialize, Serialize};

/// Every event has one; rules define it (a rule's alerts carry its severity).
pub use crate::rules::model::Severity;
pub use channel::{ChannelConfig, ChannelKind, SendError};
pub use event::{Event, EventKind, Subject};
pub use notifier::{Notifier, Published, enqueue};
pub use worker::{RetryPolicy, Worker};

/// The id of a notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotifierId(pub i64);

impl fmt::Display for NotifierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a> FromParam<'a> for NotifierId {
    type Error = &'a str;

    fn from_param(param: &'a str) -> Result<Self, &'a str> {
        match param.parse::<i64>() {
            Ok(id) if id > 0 => Ok(NotifierId(id)),
            _ => Err(param),
        }
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
