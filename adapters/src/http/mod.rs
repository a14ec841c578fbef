//! `http` (E-Government-Reife level 2): POST the sealed message to the procedure's URL.
//! 2xx is delivered (a signed receipt in the body is handed to the router); 408, 429,
//! 5xx and errors after the request went out are retried (honouring `Retry-After`); a
//! procedure that cannot be reached at all is waited for; any other 4xx is permanent.

mod config;
mod sink;
#[cfg(test)]
mod tests;

pub use config::HttpSinkConfig;
pub use sink::{HttpSink, HttpTls, parse_retry_after};
