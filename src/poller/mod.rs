//! Polling the media servers: the pure [`tracker`] and the loop around it.

pub mod tracker;
