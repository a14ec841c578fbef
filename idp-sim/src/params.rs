//! The parameters of a protocol request: the query of a GET or the form of a POST
//! (OpenID Connect lets clients use either at the authorization and end-session
//! endpoints). An empty value counts as not given (OpenID Connect Core 1.0, 3.1.2.1).

use std::convert::Infallible;

use axum::Form;
use axum::extract::{FromRequest, Query, Request};
use axum::http::Method;

/// The request's parameters, as sent.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// False when the query or form could not be decoded.
    pub readable: bool,
}

impl Params {
    /// The value of `name`, if it is given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }

    /// The first parameter given more than once (RFC 6749, 3.1: each at most once).
    pub fn repeated(&self) -> Option<&str> {
        let mut seen = std::collections::HashSet::new();
        self.pairs
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, _)| key.as_str())
            .find(|key| !seen.insert(*key))
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Infallible> {
        let pairs = if matches!(*request.method(), Method::GET | Method::HEAD) {
            Query::<Vec<(String, String)>>::try_from_uri(request.uri())
                .ok()
                .map(|Query(pairs)| pairs)
        } else {
            Form::<Vec<(String, String)>>::from_request(request, state)
                .await
                .ok()
                .map(|Form(pairs)| pairs)
        };
        Ok(Self {
            readable: pairs.is_some(),
            pairs: pairs.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_not_given_and_repeats_are_found() {
        let params = Params {
            pairs: vec![
                ("state".into(), String::new()),
                ("scope".into(), "openid".into()),
                ("state".into(), "s".into()),
            ],
            readable: true,
        };
        assert_eq!(params.get("state"), Some("s"));
        assert_eq!(params.get("nonce"), None);
        assert_eq!(params.repeated(), None);
        let twice = Params {
            pairs: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            readable: true,
        };
        assert_eq!(twice.repeated(), Some("a"));
    }
}
