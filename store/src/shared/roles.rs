//! The store roles' methods that are the same on both backends, written once: a
//! backend's impl of a role goes through [`role_impl`], which adds them.

/// A backend's impl of a store role, completed by the role's methods that are shared
/// reads ([`crate::shared::reads::Reads`], or the audit trail's `AuditReader` with the
/// backend's sqlx database named, on the backend's `pool`) or writes of one statement
/// ([`crate::shared::writes`], run by the backend's `execute` and `transition`): those
/// are written here once for both backends, the backend writes only its own methods
/// (and, for the loops here, the one step each takes: `discard_upload`, `purge_one`).
macro_rules! role_impl {
    (@impl $role:ident for $store:ty { $($own:tt)* } { $($shared:tt)* }) => {
        #[async_trait::async_trait]
        impl kopplung_core::store::$role for $store {
            $($own)*
            $($shared)*
        }
    };
    (AuditStore for $store:ty, reading $db:ty { $($own:tt)* }) => {
        $crate::shared::roles::role_impl!(@impl AuditStore for $store { $($own)* } {
            async fn audit_entries(
                &self,
                application_id: uuid::Uuid,
            ) -> Result<Vec<kopplung_core::store::AuditEntry>, kopplung_core::store::StoreError> {
                let mut connection = self.pool.acquire().await.sql()?;
                $crate::shared::audit::AuditReader::<$db>::new(&mut connection)
                    .entries_of(&application_id.to_string(), false)
                    .await
            }

            async fn audit_heads(
                &self,
            ) -> Result<Vec<kopplung_core::store::ChainHead>, kopplung_core::store::StoreError> {
                let mut connection = self.pool.acquire().await.sql()?;
                $crate::shared::audit::AuditReader::<$db>::new(&mut connection)
                    .heads()
                    .await
            }

            async fn audit_checkpoints(
                &self,
            ) -> Result<Vec<kopplung_core::store::Checkpoint>, kopplung_core::store::StoreError> {
                let mut connection = self.pool.acquire().await.sql()?;
                $crate::shared::audit::AuditReader::<$db>::new(&mut connection)
                    .checkpoints()
                    .await
            }

            async fn record_audit_checkpoint(
                &self,
                checkpoint: &kopplung_core::store::Checkpoint,
            ) -> Result<(), kopplung_core::store::StoreError> {
                self.execute($crate::shared::writes::audit_checkpoint(checkpoint)).await?;
                Ok(())
            }
        });
    };
    (IntakeStore for $store:ty { $($own:tt)* }) => {
        $crate::shared::roles::role_impl!(@impl IntakeStore for $store { $($own)* } {
            async fn create_upload(
                &self,
                upload: &kopplung_core::store::NewUpload,
            ) -> Result<(), kopplung_core::store::StoreError> {
                self.execute($crate::shared::writes::create_upload(upload)).await?;
                Ok(())
            }

            async fn append_upload_chunk(
                &self,
                id: uuid::Uuid,
                seq: u64,
                content: &[u8],
            ) -> Result<(), kopplung_core::store::StoreError> {
                self.execute($crate::shared::writes::upload_chunk(id, seq, content)).await?;
                Ok(())
            }

            async fn complete_upload(
                &self,
                id: uuid::Uuid,
                size: u64,
                sha512: &str,
            ) -> Result<(), kopplung_core::store::StoreError> {
                let now = self.clock.now();
                self.execute($crate::shared::writes::complete_upload(id, size, sha512, now)).await?;
                Ok(())
            }

            async fn upload(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<kopplung_core::store::UploadInfo>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).upload(id).await
            }

            async fn upload_chunk(
                &self,
                id: uuid::Uuid,
                seq: u64,
            ) -> Result<Option<Vec<u8>>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).upload_chunk(id, seq).await
            }

            async fn discard_stale_uploads(
                &self,
                before: time::OffsetDateTime,
            ) -> Result<u64, kopplung_core::store::StoreError> {
                let mut discarded = 0;
                for id in $crate::shared::reads::Reads::on(&self.pool).stale_uploads(before).await? {
                    if self.discard_upload(id).await? {
                        discarded += 1;
                    }
                }
                Ok(discarded)
            }

            async fn application(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<kopplung_core::store::ApplicationRecord>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).application(id).await
            }
        });
    };
    (OutboxStore for $store:ty { $($own:tt)* }) => {
        $crate::shared::roles::role_impl!(@impl OutboxStore for $store { $($own)* } {
            async fn next_due(
                &self,
            ) -> Result<Option<time::OffsetDateTime>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).next_due().await
            }

            async fn sealed_message(
                &self,
                item: &kopplung_core::store::WorkItem,
            ) -> Result<Vec<u8>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).sealed_message(item).await
            }
        });
    };
    (PickupStore for $store:ty { $($own:tt)* }) => {
        $crate::shared::roles::role_impl!(@impl PickupStore for $store { $($own)* } {
            async fn acknowledge_pickup(
                &self,
                procedure: &str,
                message_id: uuid::Uuid,
                detail: &str,
            ) -> Result<kopplung_core::store::PickupAck, kopplung_core::store::StoreError> {
                // One conditional update (SQLite: on the writer; PostgreSQL: the second
                // waits for the first's row lock, then re-checks): of two acknowledgements
                // at once, the second finds the message done.
                let detail = detail.to_owned();
                let collected = $crate::shared::writes::collected(procedure, message_id, self.clock.now());
                let delivered = self
                    .transition(collected, move |row| {
                        row.change(kopplung_core::store::Status::Delivered, &detail)
                    })
                    .await?;
                if delivered {
                    return Ok(kopplung_core::store::PickupAck::Acknowledged);
                }
                $crate::shared::reads::Reads::on(&self.pool)
                    .pickup_answer(procedure, message_id)
                    .await
            }

            async fn pickups(
                &self,
                procedure: &str,
                limit: u32,
            ) -> Result<Vec<kopplung_core::store::Pickup>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).pickups(procedure, limit).await
            }

            async fn pickup(
                &self,
                procedure: &str,
                message_id: uuid::Uuid,
            ) -> Result<
                Option<(kopplung_core::store::Pickup, Vec<u8>)>,
                kopplung_core::store::StoreError,
            > {
                $crate::shared::reads::Reads::on(&self.pool).pickup(procedure, message_id).await
            }

            async fn attachment_fragment(
                &self,
                procedure: &str,
                message_id: uuid::Uuid,
                position: u32,
                fragment: u64,
            ) -> Result<Option<Vec<u8>>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool)
                    .attachment_fragment(procedure, message_id, position, fragment)
                    .await
            }
        });
    };
    (EventStore for $store:ty { $($own:tt)* }) => {
        $crate::shared::roles::role_impl!(@impl EventStore for $store { $($own)* } {
            async fn check_receipt(
                &self,
                receipt: &kopplung_core::store::ReceiptRecord,
            ) -> Result<kopplung_core::store::ReceiptOutcome, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool)
                    .check_receipt(receipt)
                    .await
            }

            async fn mailbox(
                &self,
                id: uuid::Uuid,
            ) -> Result<
                (Vec<kopplung_core::store::MailboxEntry>, Vec<kopplung_core::store::DocumentInfo>),
                kopplung_core::store::StoreError,
            > {
                $crate::shared::reads::Reads::on(&self.pool).mailbox(id).await
            }

            async fn document(
                &self,
                application_id: uuid::Uuid,
                document_id: uuid::Uuid,
            ) -> Result<
                Option<(kopplung_core::store::DocumentInfo, Vec<u8>)>,
                kopplung_core::store::StoreError,
            > {
                $crate::shared::reads::Reads::on(&self.pool)
                    .document(application_id, document_id)
                    .await
            }

            async fn signed_events(
                &self,
                application_id: uuid::Uuid,
            ) -> Result<Vec<Vec<u8>>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool)
                    .signed_events(application_id)
                    .await
            }
        });
    };
    (OversightStore for $store:ty { $($own:tt)* }) => {
        $crate::shared::roles::role_impl!(@impl OversightStore for $store { $($own)* } {
            async fn send_again(
                &self,
                again: kopplung_core::store::SendAgain,
                application_id: uuid::Uuid,
                by: &str,
            ) -> Result<bool, kopplung_core::store::StoreError> {
                let by = by.to_owned();
                let update = $crate::shared::writes::send_again(again, application_id, self.clock.now());
                self.transition(update, move |row| {
                    Ok($crate::shared::history::Change::sent_again(
                        again,
                        application_id,
                        &by,
                        &row.message_id,
                        row.sealed.as_deref(),
                    ))
                })
                .await
            }

            async fn backlog(
                &self,
            ) -> Result<Vec<kopplung_core::store::Backlog>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).backlog().await
            }

            async fn dead_letters(
                &self,
            ) -> Result<Vec<kopplung_core::store::DeadLetter>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).dead_letters().await
            }

            async fn sent_xml(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<String>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).sent_xml(id).await
            }

            async fn search(
                &self,
                query: &kopplung_core::store::ApplicationQuery,
            ) -> Result<Vec<kopplung_core::store::ApplicationSummary>, kopplung_core::store::StoreError> {
                $crate::shared::reads::Reads::on(&self.pool).search(query).await
            }

            async fn purge_personal_data(
                &self,
                service: &str,
                final_before: time::OffsetDateTime,
                limit: u32,
            ) -> Result<u64, kopplung_core::store::StoreError> {
                let candidates = $crate::shared::reads::Reads::on(&self.pool)
                    .purge_candidates(service, final_before, limit)
                    .await?;
                let mut purged = 0;
                for application_id in candidates {
                    if self.purge_one(application_id).await? {
                        purged += 1;
                    }
                }
                Ok(purged)
            }
        });
    };
}
pub(crate) use role_impl;
