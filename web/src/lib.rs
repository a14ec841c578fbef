//! What kopplung's HTTP front ends share — the hub's API, its clerk inbox and admin
//! console, and the citizens' portal: the server layer that holds against hostile
//! clients, the login limiter, safe redirect targets, client addresses behind trusted
//! proxies, and private files.
#![forbid(unsafe_code)]

pub mod client;
pub mod files;
pub mod limiter;
pub mod redirect;
pub mod server;

pub use client::{ClientAddr, ClientAddresses, ProxyConfig};
pub use limiter::{Attempt, LoginLimiter, LoginPolicy, Refused};
pub use server::{Server, ServerLimits, ServerStats};

/// The errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting of `[limits]` is wrong.
    #[error("[limits] {key}: {message}")]
    Config { key: &'static str, message: String },
}
