//! The callback against a real HTTP receiver on loopback that checks the signature the
//! way `docs/vendors.md` tells a procedure to.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use tokio::sync::Mutex;

use super::*;
use crate::test_support::receiver;
use crate::{OutboundMessage, Outcome, Sink};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-shared";

fn message() -> OutboundMessage {
    OutboundMessage {
        message_id: "3f2c3a52-52a4-4b55-9f8e-000000000001".into(),
        correlation_id: "a6f5e0c4-0000-4000-8000-000000000002".into(),
        message_type: "maengelanzeige.meldung.0101".into(),
        content_type: "application/jose".into(),
        headers: Vec::new(),
        body: Bytes::from_static(b"sealed"),
    }
}

#[tokio::test]
async fn the_callback_is_signed_and_verifies_at_the_receiver() {
    let verified = Arc::new(Mutex::new(Vec::new()));
    let recorded = verified.clone();
    let url = receiver("/hook", move |headers: HeaderMap, body: Bytes| {
        let verified = recorded.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let result = verify_callback(
                SECRET,
                &header(CALLBACK_TIMESTAMP),
                &header(CALLBACK_AUTHENTICATION),
                &body,
                SystemTime::now(),
            );
            verified.lock().await.push((result.clone(), body));
            if result.is_ok() {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::UNAUTHORIZED
            }
        }
    })
    .await;

    let sink = PullSink::new("fv-a", Some((&url, SECRET.to_vec()))).expect("sink");
    assert_eq!(sink.deliver(&message()).await, Outcome::AwaitingPickup);
    let verified = verified.lock().await;
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].0, Ok(()));
    let body: serde_json::Value = serde_json::from_slice(&verified[0].1).expect("json");
    assert_eq!(body["message_id"], "3f2c3a52-52a4-4b55-9f8e-000000000001");
    assert_eq!(body["procedure"], "fv-a");
}

#[tokio::test]
async fn an_unreachable_callback_still_leaves_the_message_for_pickup() {
    let port = crate::test_support::closed_port();
    let sink = PullSink::new(
        "fv-a",
        Some((&format!("http://127.0.0.1:{port}/hook"), SECRET.to_vec())),
    )
    .expect("sink");
    assert_eq!(sink.deliver(&message()).await, Outcome::AwaitingPickup);
}

#[test]
fn old_forged_or_tampered_callbacks_are_refused() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let body = br#"{"type":"message-available"}"#;
    let fresh = "1799999900";
    let signature = callback_signature(SECRET, fresh, body).expect("sign");
    assert_eq!(signature.len(), 128, "hex of 64 bytes");
    assert_eq!(
        verify_callback(SECRET, fresh, &signature, body, now),
        Ok(())
    );
    // Older than five minutes, even with a valid signature.
    let old = "1799999699";
    let old_signature = callback_signature(SECRET, old, body).expect("sign");
    assert_eq!(
        verify_callback(SECRET, old, &old_signature, body, now),
        Err(CallbackError::Stale)
    );
    // A changed body, timestamp or secret.
    assert_eq!(
        verify_callback(SECRET, fresh, &signature, br#"{"type":"other"}"#, now),
        Err(CallbackError::BadSignature)
    );
    assert_eq!(
        verify_callback(SECRET, "1799999901", &signature, body, now),
        Err(CallbackError::BadSignature)
    );
    assert_eq!(
        verify_callback(
            b"another secret of enough length!!",
            fresh,
            &signature,
            body,
            now
        ),
        Err(CallbackError::BadSignature)
    );
    assert_eq!(
        verify_callback(SECRET, "yesterday", &signature, body, now),
        Err(CallbackError::BadTimestamp)
    );
}

#[test]
fn a_short_secret_is_refused() {
    assert!(PullSink::new("fv-a", Some(("http://127.0.0.1:1/hook", b"short".to_vec()))).is_err());
}
