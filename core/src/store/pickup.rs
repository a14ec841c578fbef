//! Pickup: messages a procedure collects itself (pull API, clerk inbox) and their attachments.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use super::model::*;

#[async_trait]
pub trait PickupStore: Send + Sync {
    /// Messages waiting for `procedure`, oldest first.
    async fn pickups(&self, procedure: &str, limit: u32) -> Result<Vec<Pickup>, StoreError>;

    /// One waiting (or already collected) message of `procedure` with its stored bytes.
    async fn pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
    ) -> Result<Option<(Pickup, Vec<u8>)>, StoreError>;

    /// The procedure collected the message: it is delivered (history and audit entry).
    async fn acknowledge_pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
        detail: &str,
    ) -> Result<PickupAck, StoreError>;

    /// Fragment `fragment` (plain bytes) of attachment `position` of the message
    /// `message_id` of `procedure`; None if there is no such message, attachment or
    /// fragment, or its content was deleted.
    async fn attachment_fragment(
        &self,
        procedure: &str,
        message_id: Uuid,
        position: u32,
        fragment: u64,
    ) -> Result<Option<Vec<u8>>, StoreError>;
}
