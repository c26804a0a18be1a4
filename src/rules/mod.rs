//! Rules: conditions a person can read and tune, evaluated against live sessions and their
//! context; violations with their evidence; actions; trust.
//!
//! - [`model`]: fields, operators, parameters, actions, and validation of a rule as typed.
//! - [`eval`]: the pure evaluator (plain data in, verdict and evidence out).
//! - [`presets`]: the classic detectors with the peers' defaults.
//! - [`backtest`]: replays a rule over history (pure).
//! - [`engine`]: the worker beside the poller: gathers facts, evaluates, records, acts.
//! - [`actions`]: the seam to notifications and the targets of stop and message actions.
//! - [`trust`]: score arithmetic and recovery.

pub mod actions;
pub mod admin;
pub mod backtest;
pub mod engine;
pub mod eval;
pub mod facts;
pub mod model;
pub mod presets;
pub mod trust;
