//! What kopplung's HTTP front ends share — the hub's API, its clerk inbox and admin
//! console, and the citizens' portal: the server layer that holds against hostile
//! clients, the login limiter, safe redirect targets, client addresses behind trusted
//! proxies, private files, and the web shell of the server-rendered pages (`shell`:
//! sessions, CSRF, cookies, security headers, layout, German time, passwords).
#![forbid(unsafe_code)]

pub mod client;
pub mod contact;
pub mod disposition;
pub mod files;
pub mod limiter;
pub mod redirect;
pub mod server;
pub mod shell;

pub use client::{ClientAddr, ClientAddresses, ProxyConfig};
pub use limiter::{Attempt, LoginLimiter, LoginPolicy, Refused};
pub use server::{Server, ServerLimits, ServerStats};

/// The errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting of `[limits]` is wrong.
    #[error("[limits] {key}: {message}")]
    Config { key: &'static str, message: String },
    /// A template compiled into the binary does not compile.
    #[error("template {file}: {message}")]
    Template { file: String, message: String },
    /// A password could not be hashed.
    #[error("password hashing: {0}")]
    Password(String),
}
