//! Problem details of the FIT-Connect edge: FIT-Connect's problem types where it
//! defines them (`https://schema.fitko.de/fit-connect/submission-api/problems/…`),
//! the hub's own (`urn:kopplung:problem:…`, `docs/api.md`) otherwise. Every error is
//! JSON with a `type`: FIT-Connect's SDKs read it from every error.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kopplung_core::fitconnect::SubmissionError;

use crate::api::problem::Problem;

/// FIT-Connect's problem type prefix of the Submission API.
pub const FIT_PROBLEMS: &str = "https://schema.fitko.de/fit-connect/submission-api/problems/";

/// A problem document of the FIT-Connect edge.
#[derive(Debug)]
pub struct FitProblem(pub Problem);

impl FitProblem {
    fn fitko(status: StatusCode, name: &str, title: &str) -> Self {
        let mut problem = Problem::new(status, name, title);
        problem.kind = format!("{FIT_PROBLEMS}{name}");
        Self(problem)
    }

    fn own(status: StatusCode, kind: &str, title: &str) -> Self {
        Self(Problem::new(status, kind, title))
    }

    fn detail(self, detail: impl Into<String>) -> Self {
        Self(self.0.detail(detail))
    }

    pub fn unauthorized() -> Self {
        Self(Problem::unauthorized().detail(
            "send an access token of the FIT-Connect token endpoint (/fitconnect/token) as Bearer",
        ))
    }

    /// The token's role may not use this resource (a subscriber sending, …).
    pub fn wrong_role(role: &str) -> Self {
        Self::own(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This client may not use this resource",
        )
        .detail(format!("this needs a {role}'s token"))
    }

    pub fn destination_not_found() -> Self {
        Self::fitko(
            StatusCode::NOT_FOUND,
            "destination-not-found",
            "Destination not found",
        )
    }

    pub fn key_not_found() -> Self {
        Self::own(
            StatusCode::NOT_FOUND,
            "not-found",
            "The destination has no key with this id",
        )
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::own(
            StatusCode::BAD_REQUEST,
            "malformed",
            "The request is not valid",
        )
        .detail(detail)
    }

    pub fn from_problem(problem: Problem) -> Self {
        Self(problem)
    }
}

impl IntoResponse for FitProblem {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl From<SubmissionError> for FitProblem {
    fn from(error: SubmissionError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        let detail = error.to_string();
        match error {
            SubmissionError::Malformed(_) => Self::malformed(detail),
            SubmissionError::DestinationNotFound(_) => Self::destination_not_found().detail(detail),
            SubmissionError::NotInScope(_) => Self::own(
                StatusCode::FORBIDDEN,
                "forbidden",
                "The token's scope does not include this destination",
            )
            .detail(detail),
            SubmissionError::ServiceNotAccepted(_) => Self::own(
                unprocessable,
                "service-not-accepted",
                "The destination does not accept this service",
            )
            .detail(detail),
            SubmissionError::SubmissionNotFound(_) => Self::fitko(
                StatusCode::NOT_FOUND,
                "submission-not-found",
                "Submission not found",
            )
            .detail(detail),
            SubmissionError::AttachmentNotAnnounced(_) => Self::own(
                unprocessable,
                "attachment-not-announced",
                "The attachment was not announced",
            )
            .detail(detail),
            SubmissionError::TooManyAttachments { .. } => Self::own(
                unprocessable,
                "too-many-attachments",
                "More attachments announced than the service takes",
            )
            .detail(detail),
            SubmissionError::AttachmentNotFound(_) => Self::own(
                StatusCode::NOT_FOUND,
                "not-found",
                "The submission has no such attachment",
            )
            .detail(detail),
            SubmissionError::AttachmentMissing(_) => Self::own(
                unprocessable,
                "missing-attachment",
                "An announced attachment was not uploaded",
            )
            .detail(detail),
            SubmissionError::Undecryptable { .. } => Self::own(
                unprocessable,
                "encryption-issue",
                "A part cannot be decrypted with the destination's key",
            )
            .detail(detail),
            SubmissionError::MetadataInvalid(_) => Self::own(
                unprocessable,
                "metadata-invalid",
                "The metadata violates FIT-Connect's metadata schema 1.0.0",
            )
            .detail(detail),
            SubmissionError::AttachmentsDiffer => Self::own(
                unprocessable,
                "attachments-mismatch",
                "The metadata's attachments differ from the announced ones",
            )
            .detail(detail),
            SubmissionError::DataHash | SubmissionError::AttachmentHash(_) => Self::own(
                unprocessable,
                "hash-mismatch",
                "A hash in the metadata does not match the content",
            )
            .detail(detail),
            SubmissionError::DataMalformed(_) => Self::own(
                unprocessable,
                "data-invalid",
                "The data is not a document of the service's schema",
            )
            .detail(detail),
            SubmissionError::NotResponsible { .. } => Self::own(
                unprocessable,
                "not-responsible",
                "The destination is not responsible for this region",
            )
            .detail(detail),
            SubmissionError::Intake(error) => Self(Problem::from(error)),
            SubmissionError::Store(_) => Self(Problem::store_unreachable()),
        }
    }
}
