//! The operator's search for applications: criteria as given, checked into a query.

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::{ApplicationQuery, Status, StoreError};

/// Search criteria as an operator gives them (text, e.g. the admin API's query string),
/// every one optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchCriteria {
    pub receipt: Option<String>,
    pub service: Option<String>,
    pub procedure: Option<String>,
    pub status: Option<String>,
    /// RFC 3339: accepted at or after.
    pub from: Option<String>,
    /// RFC 3339: accepted before.
    pub until: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Why a search found nothing to show.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A criterion is invalid: which and why.
    #[error("{0}")]
    BadQuery(String),
    #[error("the store is not reachable: {0}")]
    Unavailable(StoreError),
}

impl SearchCriteria {
    /// The store's query, or the first invalid criterion.
    pub fn query(self) -> Result<ApplicationQuery, SearchError> {
        let time = |value: &Option<String>, name: &str| match value {
            None => Ok(None),
            Some(text) => OffsetDateTime::parse(text, &Rfc3339)
                .map(Some)
                .map_err(|_| {
                    SearchError::BadQuery(format!(
                        "{name} must be an RFC 3339 time, e.g. 2026-11-30T00:00:00Z"
                    ))
                }),
        };
        let status = match self.status.as_deref().map(Status::parse) {
            None => None,
            Some(Some(status)) => Some(status),
            Some(None) => {
                return Err(SearchError::BadQuery(
                    "status is not a state of an application".into(),
                ));
            }
        };
        let from = time(&self.from, "from")?;
        let until = time(&self.until, "until")?;
        Ok(ApplicationQuery {
            receipt: self.receipt,
            service: self.service,
            procedure: self.procedure,
            status,
            from,
            until,
            limit: self.limit.unwrap_or(100).clamp(1, 1000),
            // Applications; a follow-up message is found by its receipt number.
            follow_ups: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_are_checked_and_the_limit_bounded() {
        let query = SearchCriteria {
            status: Some("dead_lettered".into()),
            from: Some("2026-11-30T00:00:00Z".into()),
            limit: Some(5000),
            ..SearchCriteria::default()
        }
        .query()
        .unwrap();
        assert_eq!(query.status, Some(Status::DeadLettered));
        assert!(query.from.is_some() && query.until.is_none());
        assert_eq!(query.limit, 1000);
        assert_eq!(SearchCriteria::default().query().unwrap().limit, 100);
        for (criteria, says) in [
            (
                SearchCriteria {
                    status: Some("lost".into()),
                    ..SearchCriteria::default()
                },
                "status",
            ),
            (
                SearchCriteria {
                    until: Some("gestern".into()),
                    ..SearchCriteria::default()
                },
                "until must",
            ),
        ] {
            match criteria.query() {
                Err(SearchError::BadQuery(reason)) => assert!(reason.starts_with(says), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
