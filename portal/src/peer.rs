//! A service the portal calls over HTTP with a bearer token: the router's public API,
//! the payment provider.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder};

pub(crate) struct Peer {
    /// Without a trailing slash: paths start with one.
    base: String,
    token: String,
    http: Client,
}

impl Peer {
    /// A request to the peer gives up after `timeout`.
    pub(crate) fn new(base: &str, token: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: Client::builder().timeout(timeout).build()?,
        })
    }

    /// A request for `path` below the base, with the token.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }
}
