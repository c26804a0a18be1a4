//! Notifications end to end: every channel against a real receiver on loopback (a real SMTP
//! server, HTTP capture servers speaking as Pushover, ntfy, Discord and a webhook), the
//! durable outbox across outages and restarts, and Settings → Notifications with its API.

#[path = "../common/mod.rs"]
mod common;

mod capture;
mod harness;
mod smtp;

mod channels;
mod delivery;
mod email;
mod violations;
mod web;
