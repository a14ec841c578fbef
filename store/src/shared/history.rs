//! What an entry of an application's history and its audit entry record, alike on both
//! backends: the status, the detail and what the audit entry binds by hash. A backend
//! writes a [`Change`] with its SQL (`append_history`, `change_status`).

use uuid::Uuid;

use kopplung_core::audit::{AuditEntry, Binding, content, sha256_hex};
use kopplung_core::store::{HistoryKind, NewApplication, SendAgain, Status, rules};

/// One history entry with its audit entry: a state change, or a note at the status the
/// application has (retry now, an access).
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) application_id: Uuid,
    pub(crate) status: Status,
    pub(crate) detail: String,
    pub(crate) binding: Binding,
    /// What the entry records, for the change feed.
    pub(crate) kind: HistoryKind,
}

impl Change {
    /// An entry that binds a message by its hash (`message_sha256`), or nothing.
    pub(crate) fn message(
        application_id: Uuid,
        status: Status,
        detail: &str,
        message_sha256: Option<String>,
    ) -> Self {
        Self {
            application_id,
            status,
            detail: detail.to_owned(),
            binding: Binding::message(message_sha256),
            kind: HistoryKind::Change,
        }
    }

    /// A note at the application's `status`: binds nothing.
    pub(crate) fn note(application_id: Uuid, status: Status, detail: &str) -> Self {
        Self {
            kind: HistoryKind::Note,
            ..Self::message(application_id, status, detail, None)
        }
    }

    /// The first entry: the form data and attachments bound by their content hash.
    pub(crate) fn accepted(new: &NewApplication, content_sha256: String) -> Self {
        Self {
            application_id: new.id,
            status: Status::Accepted,
            detail: match &new.follow_up {
                Some(of) => rules::follow_up_detail(&new.client_id, of),
                None => rules::accepted_detail(&new.client_id),
            },
            binding: Binding {
                message_sha256: None,
                content_sha256: Some(content_sha256),
            },
            kind: HistoryKind::Change,
        }
    }

    /// The second entry of an application stored with its message sealed at intake
    /// (see [`NewApplication::first_state`]).
    pub(crate) fn sealed_ahead(new: &NewApplication) -> Option<Self> {
        let sealed = new.sealed.as_ref()?;
        Some(Self::message(
            new.id,
            Status::Prepared,
            &sealed.detail,
            Some(sha256_hex(&sealed.message)),
        ))
    }

    /// A message sent again as `again` says, with its `sealed` message: a dead letter
    /// back to `prepared` (to `accepted` if it was never sealed), a delivered message
    /// without a receipt back to `prepared`.
    pub(crate) fn sent_again(
        again: SendAgain,
        application_id: Uuid,
        by: &str,
        message_id: &str,
        sealed: Option<&[u8]>,
    ) -> Self {
        let (status, detail) = match again {
            SendAgain::Replay => rules::replayed(sealed.is_some(), by, message_id),
            SendAgain::Resend => rules::resent(by, message_id),
            SendAgain::Reprocess => rules::reprocessed(by, message_id),
        };
        Self::message(application_id, status, &detail, sealed.map(sha256_hex))
    }

    /// Retention deleted the personal data; the entry binds what is left, so that data
    /// written back later is noticed.
    pub(crate) fn purged(
        application_id: Uuid,
        status: Status,
        attachments: u64,
        documents: u64,
    ) -> Self {
        Self {
            application_id,
            status,
            detail: content::purge_detail(attachments, documents),
            binding: Binding {
                message_sha256: None,
                content_sha256: Some(content::purged_content_sha256()),
            },
            // The status stays: no change for the feed.
            kind: HistoryKind::Note,
        }
    }

    /// The change binding the stored message `sealed` (if any), unless it binds one
    /// already (the message just sealed).
    pub(crate) fn binding_stored(mut self, sealed: Option<&[u8]>) -> Self {
        if self.binding.message_sha256.is_none() {
            self.binding.message_sha256 = sealed.map(sha256_hex);
        }
        self
    }

    /// The audit entry of this change stamped `at`, linked to the chain's end `head`
    /// (seq and hash; `None` before the first entry).
    pub(crate) fn audit_entry(&self, head: Option<(i64, String)>, at: &str) -> AuditEntry {
        self.audit_entry_in(kopplung_core::audit::GLOBAL_CHAIN, head, at)
    }

    /// The audit entry of this change in `chain`, linked to that chain's end `head`.
    pub(crate) fn audit_entry_in(
        &self,
        chain: &str,
        head: Option<(i64, String)>,
        at: &str,
    ) -> AuditEntry {
        AuditEntry::next_in(
            chain,
            head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
            self.application_id,
            at,
            self.status.as_str(),
            &self.detail,
            self.binding.clone(),
        )
    }
}
