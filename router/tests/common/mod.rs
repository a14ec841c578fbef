//! What the store tests of both stores (SQLite, PostgreSQL) build their cases from.
// Each test file uses some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;

use kopplung_router::store::{IdempotencyKey, NewApplication};
use time::OffsetDateTime;
use uuid::Uuid;

/// The procedure every test application goes to.
pub const PROCEDURE: &str = "dresden-maengel";

/// An accepted Mängelanzeige for [`PROCEDURE`], with an idempotency key and request hash
/// if given.
pub fn application(key: Option<(&str, &str)>) -> NewApplication {
    NewApplication {
        id: Uuid::new_v4(),
        receipt: format!("T{}", &Uuid::new_v4().simple().to_string()[..8]),
        client_id: "client".into(),
        service_key: "99999001000000".into(),
        region: "146120000000".into(),
        procedure_id: PROCEDURE.into(),
        payload: serde_json::json!({"beschreibung": "Schlagloch", "kontakt": {"name": "Jörg Müller"}}),
        attachments: vec![],
        message_id: Uuid::new_v4(),
        message_type: "maengelanzeige.meldung.0101".into(),
        idempotency: key.map(|(key, hash)| IdempotencyKey {
            key: key.into(),
            request_sha256: hash.into(),
        }),
        received_at: OffsetDateTime::now_utc(),
    }
}

/// Room for ten deliveries to [`PROCEDURE`].
pub fn capacity() -> BTreeMap<String, u32> {
    [(PROCEDURE.to_string(), 10)].into()
}
