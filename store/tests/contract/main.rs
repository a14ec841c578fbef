//! The store contract: every case runs on SQLite and on PostgreSQL (see
//! [`backend::Backend`]); what only one backend can show (several instances on one
//! database, SQLite's lock file and read-only store) stands beside, named after it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod backend;
mod support;

mod audit;
mod batch;
mod chains;
mod events;
mod feed;
mod follow_ups;
mod identity;
mod intake;
mod outbox;
mod oversight;
mod pickup;

contract! {
    intake: insert_stores_everything_and_idempotency_replays_or_conflicts, uploads_are_bound_once_and_read_in_fragments, applications_stored_at_once_get_their_own_answers;
    identity: an_identification_is_kept_bound_and_deleted_with_the_form;
    outbox: a_taken_over_lease_cannot_record, the_store_stamps_times_by_its_clock, retries_waits_and_failures, capacity_limits_each_procedure_and_limit_the_whole_claim, own_earlier_claims_are_released_at_start, a_silent_instances_claims_are_taken_after_the_heartbeat_timeout, an_application_sealed_at_intake_is_claimed_for_delivery;
    batch: changes_recorded_at_once_commit_but_the_one_whose_lease_was_taken_over;
    pickup: a_message_waits_for_pickup_until_acknowledged;
    follow_ups: a_follow_up_travels_on_its_own_and_is_listed_with_its_application, a_follow_up_that_may_stand_once_is_stored_once;
    feed: the_feed_hands_out_a_clients_settled_changes_in_order;
    events: a_receipt_that_overtakes_the_delivered_commit_records_both, receipts_and_events_follow_the_states;
    oversight: dead_letters_are_listed_and_replayed_with_their_message_id, a_delivered_message_without_receipt_is_resent_with_its_message_id, an_invalid_application_is_reprocessed_with_its_message_id, the_xml_sealed_is_kept_with_the_message_until_reprocessed, retention_deletes_personal_data_after_the_final_state;
    audit: every_state_change_is_chained_with_the_message_hash, failures_are_audited_too, a_flipped_byte_in_detail_is_named_by_its_seq, a_flipped_byte_in_the_message_hash_is_named_by_its_seq, removed_entries_are_noticed, content_changed_behind_the_stores_back_is_named_by_its_entry, a_tail_removed_with_its_sequence_is_named_by_a_checkpoint, entries_of_format_1_still_verify_and_are_counted, an_intact_trail_is_checked_for_content_and_checkpoints;
}
