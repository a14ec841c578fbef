use time::OffsetDateTime;
use time::macros::date;
use uuid::Uuid;

use super::*;
use crate::conversation::FollowUpRecord;
use crate::store::{Appeal, DeliveryRecord};

fn application(status: Status) -> ApplicationRecord {
    let at = OffsetDateTime::UNIX_EPOCH;
    ApplicationRecord {
        id: Uuid::nil(),
        receipt: "K7QX-2M4P".into(),
        client_id: "portal".into(),
        service: "99999001000000".into(),
        region: "146120000000".into(),
        status,
        created_at: at,
        updated_at: at,
        delivery: DeliveryRecord {
            procedure: "p".into(),
            message_id: Uuid::nil(),
            message_type: "t.antrag.0101".into(),
            attempts: 1,
            last_error: None,
            next_attempt_at: None,
            delivered_at: None,
        },
        history: Vec::new(),
        follow_up: None,
        follow_ups: Vec::new(),
    }
}

fn entry(kind: &str, event_id: &str, appeal: Option<Appeal>) -> MailboxEntry {
    MailboxEntry {
        event_id: event_id.into(),
        kind: kind.into(),
        text: "…".into(),
        document_id: None,
        at: OffsetDateTime::UNIX_EPOCH,
        appeal,
        fee: None,
    }
}

/// A follow-up message the application has sent already.
fn sent(kind: FollowUpKind, refers_to: Option<&str>, status: Status) -> FollowUpRecord {
    FollowUpRecord {
        id: Uuid::nil(),
        kind,
        refers_to: refers_to.map(str::to_owned),
        procedure: "p".into(),
        message_id: Uuid::nil(),
        message_type: kind.message_type("t.antrag.0101"),
        status,
        created_at: OffsetDateTime::UNIX_EPOCH,
        delivered_at: None,
    }
}

const TODAY: Date = date!(2026 - 12 - 06);

#[test]
fn an_answer_refers_to_a_query_of_the_application_while_it_is_open() {
    let mailbox = [entry("query", "q-1", None)];
    let open = application(Status::Query);
    assert_eq!(
        may_follow(FollowUpKind::Antwort, Some("q-1"), &open, &mailbox, TODAY),
        Ok(Some("q-1".into()))
    );
    assert_eq!(
        may_follow(FollowUpKind::Antwort, Some("q-2"), &open, &mailbox, TODAY),
        Err(Refusal::NoSuchQuery)
    );
    assert_eq!(
        may_follow(FollowUpKind::Antwort, None, &open, &mailbox, TODAY),
        Err(Refusal::NoSuchQuery)
    );
    assert_eq!(
        may_follow(
            FollowUpKind::Antwort,
            Some("q-1"),
            &application(Status::Decided),
            &mailbox,
            TODAY
        ),
        Err(Refusal::Final)
    );
}

#[test]
fn documents_follow_only_once_the_application_reached_the_procedure() {
    for status in [Status::Accepted, Status::Prepared] {
        assert_eq!(
            may_follow(
                FollowUpKind::Nachreichung,
                None,
                &application(status),
                &[],
                TODAY
            ),
            Err(Refusal::NotYetDelivered)
        );
    }
    assert_eq!(
        may_follow(
            FollowUpKind::Nachreichung,
            None,
            &application(Status::Received),
            &[],
            TODAY
        ),
        Ok(None)
    );
    assert_eq!(
        may_follow(
            FollowUpKind::Nachreichung,
            None,
            &application(Status::Rejected),
            &[],
            TODAY
        ),
        Err(Refusal::Final)
    );
}

#[test]
fn an_objection_is_possible_until_the_last_day_of_the_deadline_and_once() {
    let appeal = |deadline| Appeal {
        text: "Gegen diesen Bescheid …".into(),
        deadline,
    };
    let decided = application(Status::Decided);
    let on_time = [entry("decided", "d-1", Some(appeal(TODAY)))];
    assert_eq!(
        may_follow(FollowUpKind::Widerspruch, None, &decided, &on_time, TODAY),
        Ok(Some("d-1".into()))
    );
    let late = [entry("decided", "d-1", Some(appeal(date!(2026 - 12 - 04))))];
    assert_eq!(
        may_follow(FollowUpKind::Widerspruch, None, &decided, &late, TODAY),
        Err(Refusal::DeadlinePassed("04.12.2026".into()))
    );
    // A deadline on a Saturday runs to Monday (§ 222 Abs. 2 ZPO).
    let saturday = [entry("decided", "d-1", Some(appeal(date!(2026 - 12 - 05))))];
    for (day, allowed) in [
        (TODAY, true),
        (date!(2026 - 12 - 07), true),
        (date!(2026 - 12 - 08), false),
    ] {
        assert_eq!(
            may_follow(FollowUpKind::Widerspruch, None, &decided, &saturday, day).is_ok(),
            allowed,
            "{day}"
        );
    }
    assert_eq!(
        may_follow(
            FollowUpKind::Widerspruch,
            None,
            &decided,
            &saturday,
            date!(2026 - 12 - 08)
        ),
        Err(Refusal::DeadlinePassed("07.12.2026".into()))
    );
    let without = [entry("decided", "d-1", None)];
    assert_eq!(
        may_follow(FollowUpKind::Widerspruch, None, &decided, &without, TODAY),
        Err(Refusal::NoAppeal)
    );
    let mut objected = decided.clone();
    objected.follow_ups.push(sent(
        FollowUpKind::Widerspruch,
        Some("d-1"),
        Status::Delivered,
    ));
    assert_eq!(
        may_follow(FollowUpKind::Widerspruch, None, &objected, &on_time, TODAY),
        Err(Refusal::AlreadyObjected)
    );
}

#[test]
fn a_payment_is_reported_once_per_fee_and_only_for_a_fee_that_was_set() {
    let decided = application(Status::Decided);
    let mut with_fee = entry("decided", "d-1", None);
    with_fee.fee = Some(crate::store::DecisionFee {
        cents: 10800,
        purpose: "Hundesteuer".into(),
    });
    let without_fee = [entry("decided", "d-1", None)];
    let zahlung =
        |refers: Option<&str>, application: &ApplicationRecord, mailbox: &[MailboxEntry]| {
            may_follow(FollowUpKind::Zahlung, refers, application, mailbox, TODAY)
        };
    assert_eq!(
        zahlung(Some("d-1"), &decided, std::slice::from_ref(&with_fee)),
        Ok(Some("d-1".into()))
    );
    assert_eq!(
        zahlung(Some("d-1"), &decided, &without_fee),
        Err(Refusal::NoFee)
    );
    assert_eq!(
        zahlung(Some("d-9"), &decided, std::slice::from_ref(&with_fee)),
        Err(Refusal::NoFee)
    );
    // The fee at submission refers to no event.
    assert_eq!(zahlung(None, &decided, &[]), Ok(None));
    let mut reported = decided.clone();
    reported
        .follow_ups
        .push(sent(FollowUpKind::Zahlung, Some("d-1"), Status::Delivered));
    assert_eq!(
        zahlung(Some("d-1"), &reported, std::slice::from_ref(&with_fee)),
        Err(Refusal::PaymentReported)
    );
    assert_eq!(zahlung(None, &reported, &[]), Ok(None), "another fee");
}

#[test]
fn an_application_takes_a_bounded_number_of_messages() {
    let mut busy = application(Status::InProgress);
    for _ in 0..MAX_FOLLOW_UPS {
        busy.follow_ups
            .push(sent(FollowUpKind::Nachreichung, None, Status::Received));
    }
    assert_eq!(
        may_follow(FollowUpKind::Nachreichung, None, &busy, &[], TODAY),
        Err(Refusal::TooMany(MAX_FOLLOW_UPS))
    );
    // A payment record still goes: it is the authority's money, not the citizen's text.
    assert_eq!(
        may_follow(FollowUpKind::Zahlung, None, &busy, &[], TODAY),
        Ok(None)
    );
}

#[test]
fn an_objection_the_procedure_rejected_may_be_filed_again() {
    let decided = application(Status::Decided);
    let appeal = Appeal {
        text: "Gegen diesen Bescheid …".into(),
        deadline: TODAY,
    };
    let on_time = [entry("decided", "d-1", Some(appeal))];
    let mut rejected = decided.clone();
    rejected.follow_ups.push(sent(
        FollowUpKind::Widerspruch,
        Some("d-1"),
        Status::Rejected,
    ));
    assert_eq!(
        may_follow(FollowUpKind::Widerspruch, None, &rejected, &on_time, TODAY),
        Ok(Some("d-1".into()))
    );
}
