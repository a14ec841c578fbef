//! What came back from the receiver, on whichever channel: each signed answer verified
//! as the hub verifies it and kept by the message id it names.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kopplung_pipeline::conformance::Answers;
use kopplung_pipeline::keyring::Keyring;
use kopplung_transformers::receipt::Receipt;

/// The answers of one run.
pub struct Collected {
    keyring: Arc<Keyring>,
    procedure: String,
    /// Whether acknowledgements can be seen (pull): then "none" is a count of 0.
    counts_acknowledgements: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    answers: BTreeMap<String, Answers>,
    /// Why answers did not verify, for the report (they name no message one can trust).
    unverifiable: Vec<String>,
}

impl Collected {
    pub fn new(keyring: Arc<Keyring>, procedure: &str, counts_acknowledgements: bool) -> Arc<Self> {
        Arc::new(Self {
            keyring,
            procedure: procedure.to_owned(),
            counts_acknowledgements,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Nothing is left half-changed under the lock: a panic elsewhere does not matter.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Verifies one signed answer and keeps it; the reason if it does not verify (the
    /// channel then refuses it, as the hub would).
    pub fn take(&self, signed: &[u8]) -> Result<Receipt, String> {
        match self.keyring.verify_receipt(&self.procedure, signed) {
            Ok(receipt) => {
                self.inner()
                    .answers
                    .entry(receipt.message_id.clone())
                    .or_default()
                    .events
                    .push(receipt.clone());
                Ok(receipt)
            }
            Err(e) => {
                let reason = e.to_string();
                self.inner().unverifiable.push(reason.clone());
                Err(reason)
            }
        }
    }

    /// Checks a signed answer without keeping it: the reason it would be refused.
    pub fn verify(&self, signed: &[u8]) -> Result<Receipt, String> {
        self.keyring
            .verify_receipt(&self.procedure, signed)
            .map_err(|e| e.to_string())
    }

    /// Keeps a verified answer that came with an acknowledgement (pull).
    pub fn keep(&self, receipt: Receipt) {
        self.inner()
            .answers
            .entry(receipt.message_id.clone())
            .or_default()
            .events
            .push(receipt);
    }

    /// Counts one acknowledgement of `message_id` (pull).
    pub fn acknowledge(&self, message_id: &str) {
        let mut inner = self.inner();
        let answers = inner.answers.entry(message_id.to_owned()).or_default();
        answers.acknowledged = Some(answers.acknowledged.unwrap_or(0) + 1);
    }

    /// What came for `message_id` so far.
    pub fn answers(&self, message_id: &str) -> Answers {
        let mut answers = self
            .inner()
            .answers
            .get(message_id)
            .cloned()
            .unwrap_or_default();
        if self.counts_acknowledgements && answers.acknowledged.is_none() {
            answers.acknowledged = Some(0);
        }
        answers
    }

    /// Why the answers that did not verify were refused.
    pub fn unverifiable(&self) -> Vec<String> {
        self.inner().unverifiable.clone()
    }

    /// Message ids answered that the run did not send.
    pub fn strangers(&self, sent: &[&str]) -> Vec<String> {
        self.inner()
            .answers
            .keys()
            .filter(|id| !sent.contains(&id.as_str()))
            .cloned()
            .collect()
    }
}
