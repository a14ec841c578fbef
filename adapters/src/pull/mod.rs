//! `pull` (E-Government-Reife level 1): the procedure has no inbound port and collects
//! its messages from the hub's pull API. The sink only announces a new message, if the
//! procedure gave a callback URL, with a FIT-Connect style HMAC-SHA512 signature.

mod config;
mod sink;
#[cfg(test)]
mod tests;

pub use config::PullConfig;
pub use sink::{
    CALLBACK_AUTHENTICATION, CALLBACK_MAX_AGE, CALLBACK_TIMESTAMP, CallbackError, PullSink,
    callback_signature, verify_callback,
};
