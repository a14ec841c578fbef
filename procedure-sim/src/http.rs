//! `transport = "http"`: takes the hub's POSTs and answers with the signed receipt.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use tokio::sync::watch;

use crate::answer::{later_decide, sign};
use crate::open::{Outcome, open};
use crate::refused;
use crate::setup::{Procedure, Shared};

/// Takes the hub's POSTs (`transport = "http"`): opens the message and answers 200 with
/// the signed receipt; 400 for what is not for us, 503 (with `Retry-After`) to be asked
/// again later.
pub(crate) async fn serve(
    procedure: Arc<Procedure>,
    (listen, path): (SocketAddr, String),
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = {
        let (procedure, shared) = (procedure.clone(), shared.clone());
        axum::Router::new().route(
            &path,
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (procedure, shared) = (procedure.clone(), shared.clone());
                async move {
                    let message_type = headers
                        .get("x-kopplung-message-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let handled = open(&procedure, &shared, &body, &message_type)
                        .await
                        .and_then(|handled| {
                            sign(&procedure, &handled.receipt).map(|signed| (handled, signed))
                        });
                    match handled {
                        Ok((handled, (signed, content_type))) => {
                            // Stored before the answer: after a 200 the hub never asks again.
                            if later_decide(&procedure, &shared, None, handled.accepted).is_err() {
                                return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")]).into_response();
                            }
                            tracing::info!(procedure = %procedure.id, message_id = %handled.receipt.message_id, application_id = %handled.receipt.application_id, event = ?handled.receipt.event, "receipt in the HTTP answer");
                            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], signed)
                                .into_response()
                        }
                        Err(Outcome::Refused(reason)) => {
                            // The hub keeps it too (a dead letter the operator replays).
                            let message_id = headers
                                .get("x-kopplung-message-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default();
                            match refused::keep(&shared.outbox.refused, &procedure.id, "http", Some(message_id), &message_type, &reason, &body) {
                                Ok(file) => {
                                    tracing::error!(procedure = %procedure.id, %message_id, %reason, file = %file.display(), "message refused (not from the hub or not for us); kept aside")
                                }
                                Err(e) => {
                                    tracing::error!(procedure = %procedure.id, %message_id, %reason, error = %e, "message refused (not from the hub or not for us); not kept")
                                }
                            }
                            StatusCode::BAD_REQUEST.into_response()
                        }
                        Err(Outcome::TryLater(reason)) => {
                            tracing::warn!(procedure = %procedure.id, %reason, "asking the hub to try again");
                            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "2")])
                                .into_response()
                        }
                    }
                }
            }),
        )
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(procedure = %procedure.id, %listen, error = %e, "cannot listen");
            return;
        }
    };
    tracing::info!(procedure = %procedure.id, %listen, "receiving over HTTP");
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(procedure = %procedure.id, error = %e, "HTTP receiver failed");
    }
}
