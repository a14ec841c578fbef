//! The problem of each reason an applicant's identification is refused at intake: 403,
//! 422 for a malformed block, 503 when the identity provider's keys cannot be had (the
//! client may retry). `docs/api.md` lists them.

use axum::http::StatusCode;
use kopplung_core::identity::Refusal;

use super::problem::Problem;

pub(super) fn problem(refusal: Refusal) -> Problem {
    let forbidden = |kind, title| Problem::new(StatusCode::FORBIDDEN, kind, title);
    match refusal {
        Refusal::Missing => forbidden(
            "authentication-required",
            "The service requires an identified applicant",
        )
        .detail("send applicant.authentication with the identity provider's assertion"),
        Refusal::Malformed(detail) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "authentication-malformed",
            "The authentication block is malformed",
        )
        .detail(detail),
        Refusal::UnknownIssuer => forbidden(
            "issuer-unknown",
            "The assertion's issuer is not a trusted identity provider",
        ),
        Refusal::BadSignature => forbidden(
            "assertion-signature",
            "The assertion's signature does not verify with its issuer's keys",
        ),
        Refusal::Expired => forbidden("assertion-expired", "The assertion has expired"),
        Refusal::WrongAudience => forbidden(
            "assertion-audience",
            "The assertion was issued for another client",
        ),
        Refusal::TooOld => forbidden(
            "authentication-too-old",
            "The applicant authenticated too long ago",
        )
        .detail("the applicant must sign in again at the identity provider"),
        Refusal::Incomplete(detail) => forbidden(
            "assertion-incomplete",
            "The assertion lacks what the hub needs",
        )
        .detail(detail),
        Refusal::KeysUnavailable => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "identity-provider-unavailable",
            "The identity provider's keys cannot be fetched right now",
        )
        .detail("nothing was stored; please retry"),
        Refusal::ClientMayNotAssert => forbidden(
            "client-may-not-assert",
            "This client may not assert this trust level on its own",
        ),
        Refusal::LevelTooLow { needed, given } => forbidden(
            "trust-level-too-low",
            "The applicant's trust level is below the service's",
        )
        .detail(format!(
            "the service requires {}, the applicant was identified at {}",
            needed.code(),
            given.code()
        )),
    }
}
