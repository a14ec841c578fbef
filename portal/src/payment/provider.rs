//! A simulated payment provider following the XBezahldienste flow: the portal creates a
//! payment transaction over HTTP, the citizen pays (or cancels) on the provider's page,
//! the portal reads the status and the payment reference over HTTP. Transactions live in
//! memory: it is a stand-in for the real provider, not a ledger.
//!
//! Besides the flow it refunds a paid transaction and cancels an open one
//! (`…/{id}/refund`, `…/{id}/cancel`): what a real provider's merchant API offers, so
//! that a draft that goes unsubmitted never keeps the citizen's money
//! (`super::refund`).
//!
//! Its API answers only the portal (the bearer secret they share) and sends citizens
//! back only to the portal's own origin (`same_origin_url`, exactly, not by prefix).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Router;
use axum::extract::{Json, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::web::{Failure, Page, Posted, Visit, euro};
use kopplung_web::shell::{form_value, same_token, see_other};

#[derive(Debug, Clone)]
struct Transaction {
    gross_amount: u64,
    purpose: String,
    redirect_url: String,
    status: &'static str,
    reference: Option<String>,
    refund_reference: Option<String>,
}

pub struct Provider {
    secret: String,
    /// The payment methods offered (code, label), the first preselected.
    methods: Vec<crate::config::PaymentMethod>,
    transactions: Mutex<HashMap<String, Transaction>>,
    counter: Mutex<u64>,
}

impl Provider {
    pub fn new(secret: String, methods: Vec<crate::config::PaymentMethod>) -> Self {
        Self {
            secret,
            methods,
            transactions: Mutex::default(),
            counter: Mutex::default(),
        }
    }

    /// Whether the request carries the shared secret.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| same_token(token.trim(), &self.secret))
    }
}

/// Transactions kept at most; beyond, the simulation starts afresh (no ledger).
const MAX_TRANSACTIONS: usize = 10_000;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/paymenttransaction", post(create))
        .route("/api/v1/paymenttransaction/{id}", get(status))
        .route("/api/v1/paymenttransaction/{id}/cancel", post(cancel))
        .route("/api/v1/paymenttransaction/{id}/refund", post(refund))
        .route("/bezahlen/{id}", get(page).post(decide))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    #[allow(dead_code)]
    request_id: String,
    currency: String,
    gross_amount: u64,
    purpose: String,
    redirect_url: String,
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "detail": detail})),
    )
        .into_response()
}

fn answer(state: &Shared, id: &str, t: &Transaction) -> Value {
    json!({
        "paymentTransactionId": id,
        "status": t.status,
        "grossAmount": t.gross_amount,
        "paymentInformation": {
            "transactionUrl": format!("{}/xbezahldienste/bezahlen/{id}", state.config.public_url),
            "paymentReference": t.reference,
        },
        "refundReference": t.refund_reference,
    })
}

async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Result<Json<CreateRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !state.provider.authorized(&headers) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "the merchant's credentials are missing or wrong",
        );
    }
    let Ok(Json(request)) = body else {
        return problem(StatusCode::BAD_REQUEST, "malformed payment request");
    };
    // Back to a draft (a fee at submission) or to a submitted application (a fee its
    // decision set): nowhere else.
    let redirect_ok = ["/entwurf/", "/antraege/"].iter().any(|prefix| {
        kopplung_web::redirect::same_origin_url(&state.base_url, &request.redirect_url, prefix)
    });
    if request.currency != "EUR" || request.gross_amount == 0 || !redirect_ok {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency, amount or redirect URL not accepted",
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    let transaction = Transaction {
        gross_amount: request.gross_amount,
        purpose: request.purpose.chars().take(200).collect(),
        redirect_url: request.redirect_url,
        status: "INITIAL",
        reference: None,
        refund_reference: None,
    };
    let body = answer(&state, &id, &transaction);
    {
        let mut transactions = state
            .provider
            .transactions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if transactions.len() >= MAX_TRANSACTIONS {
            transactions.clear();
        }
        transactions.insert(id, transaction);
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

fn find(state: &Shared, id: &str) -> Option<Transaction> {
    state
        .provider
        .transactions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(id)
        .cloned()
}

async fn status(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !state.provider.authorized(&headers) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "the merchant's credentials are missing or wrong",
        );
    }
    match find(&state, &id) {
        Some(t) => Json(answer(&state, &id, &t)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such payment transaction"),
    }
}

/// `POST …/{id}/cancel`: an open transaction can no longer be paid. A paid one is
/// not cancelled (409, with its state): it is refunded.
async fn cancel(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    change(&state, &headers, &id, |t| match t.status {
        "INITIAL" | "CANCELED" | "FAILED" => {
            if t.status == "INITIAL" {
                t.status = "CANCELED";
            }
            true
        }
        _ => false,
    })
}

/// `POST …/{id}/refund`: the whole amount of a paid transaction goes back; asked again,
/// the same refund is answered (a retry after a lost answer refunds nothing twice).
async fn refund(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let year = time::OffsetDateTime::now_utc().year();
    let prefix: String = id.chars().take(4).collect::<String>().to_uppercase();
    change(&state, &headers, &id, |t| match t.status {
        "PAYED" => {
            t.status = "REFUNDED";
            t.refund_reference = Some(format!("XBZ-E-{year}-{prefix}"));
            true
        }
        "REFUNDED" => true,
        _ => false,
    })
}

/// Applies `step` to transaction `id` for the portal: 200 with the new state, 409 with
/// the unchanged one where `step` does not apply.
fn change(
    state: &Shared,
    headers: &HeaderMap,
    id: &str,
    step: impl FnOnce(&mut Transaction) -> bool,
) -> Response {
    if !state.provider.authorized(headers) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "the merchant's credentials are missing or wrong",
        );
    }
    let mut transactions = state
        .provider
        .transactions
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(t) = transactions.get_mut(id) else {
        return problem(StatusCode::NOT_FOUND, "no such payment transaction");
    };
    let status = if step(t) {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    (status, Json(answer(state, id, t))).into_response()
}

async fn page(Visit { state, visitor }: Visit, Path(id): Path<String>) -> Page {
    let Some(t) = find(&state, &id) else {
        return Err(Failure::not_found());
    };
    if t.status != "INITIAL" {
        return Ok(see_other(&t.redirect_url));
    }
    let amount = format!("{}.{:02}", t.gross_amount / 100, t.gross_amount % 100);
    state.templates.ok(
        &visitor,
        "pay",
        "Bezahlen (simulierter Zahlungsdienst)",
        &json!({"csrf": visitor.csrf, "id": id, "amount": euro(&amount), "purpose": t.purpose,
                "methods": state.provider.methods.iter().enumerate().map(|(n, m)| {
                    json!({"code": m.code, "label": m.label, "checked": n == 0})
                }).collect::<Vec<_>>()}),
    )
}

async fn decide(
    Visit { state, visitor: _ }: Visit,
    Path(id): Path<String>,
    Posted(pairs): Posted,
) -> Page {
    let pay = form_value(&pairs, "aktion") == Some("bezahlen");
    let chosen = form_value(&pairs, "zahlart");
    let method_ok = state
        .provider
        .methods
        .iter()
        .any(|m| Some(m.code.as_str()) == chosen);
    let redirect = {
        let mut transactions = state
            .provider
            .transactions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(t) = transactions.get_mut(&id) else {
            return Err(Failure::not_found());
        };
        if t.status == "INITIAL" {
            if pay && !method_ok {
                return Err(Failure::bad_request("Bitte wählen Sie eine Zahlungsart."));
            }
            if pay {
                let mut counter = state
                    .provider
                    .counter
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                *counter += 1;
                let year = time::OffsetDateTime::now_utc().year();
                t.status = "PAYED";
                t.reference = Some(format!(
                    "XBZ-{year}-{:07}-{}",
                    *counter,
                    &id[..4].to_uppercase()
                ));
            } else {
                t.status = "CANCELED";
            }
        }
        t.redirect_url.clone()
    };
    Ok(see_other(&redirect))
}
