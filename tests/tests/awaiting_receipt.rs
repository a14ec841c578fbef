//! Nothing silently stuck: a procedure that takes messages off its queue and never
//! confirms them (here a consumer that acknowledges two and answers nothing) leaves
//! their applications `delivered`. Past the procedure's receipt deadline they show as
//! awaiting a receipt — in the metric, the status answer, the admin API, the CLI and the
//! console — while one the procedure confirmed does not. An operator sends them again
//! with the same message id (one with the CLI, the rest of the procedure's in the
//! console); the reference procedure (`kopplung procedure-sim`) confirms them and they
//! become `received`.

use std::time::Duration;

use kopplung_tests::browser::{Browser, csrf_of};
use kopplung_tests::shared::{admin_cli, answer, history, maengel};
use kopplung_tests::{
    ADMIN_TOKEN, AUDITOR_TOKEN, HubSetup, TestHub, amqp, delete_queue, drain, drain_one,
};
use serde_json::Value;

const PROCEDURE: &str = "dresden-maengel";

/// `kopplung awaiting-receipt ARGS` against the hub, with the operator's token.
fn awaiting_cli(hub: &TestHub, args: &[&str]) -> (bool, String) {
    admin_cli(hub, "awaiting-receipt", args)
}

/// The broker, and a hub whose procedure's receipts are overdue after 2 s (with the
/// further settings `more`): the hub and the procedure's queue.
async fn hub_with_deadline(more: &str) -> (lapin::Connection, TestHub, String) {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::procedure_settings(
        PROCEDURE,
        &format!("receipt_deadline_secs = 2\n{more}"),
    ))
    .await;
    let queue = hub.queue(PROCEDURE);
    (broker, hub, queue)
}

/// Asks the hub to resend the application `id` now, as the holder of `token`.
async fn resend(hub: &TestHub, id: &str, token: &str) -> (u16, Value) {
    let path = format!("/api/v1/admin/applications/{id}/resend");
    admin(hub, "POST", &path, token).await
}

async fn admin(hub: &TestHub, method: &str, path: &str, token: &str) -> (u16, Value) {
    let client = reqwest::Client::new();
    let request = match method {
        "POST" => client.post(hub.url(path)),
        _ => client.get(hub.url(path)),
    };
    answer(request.bearer_auth(token)).await
}

/// Waits until the procedure confirmed the application (`received` in its history; the
/// reference procedure may have decided it since).
async fn confirmed(hub: &TestHub, id: &str) -> Value {
    hub.wait_until(id, "be confirmed", Duration::from_secs(60), |status| {
        history(status, "status").contains(&"received")
    })
    .await
}

#[tokio::test]
async fn silently_dropped_messages_show_as_overdue_and_a_resend_with_their_message_ids_is_received()
{
    let (broker, hub, queue) = hub_with_deadline("").await;

    // The procedure drops two messages: taken off the queue, acknowledged, unanswered.
    let mut dropped = Vec::new();
    for beschreibung in ["Laterne defekt", "Gehweg beschädigt"] {
        let id = hub.submit_accepted(&maengel(beschreibung), None).await;
        let delivered = hub
            .wait_for_status(&id, "delivered", Duration::from_secs(60))
            .await;
        assert!(delivered["delivery"]["awaiting_receipt_since"].is_null());
        let message_id = delivered["delivery"]["message_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let taken = drain_one(&broker, &queue).await;
        assert_eq!(taken.message_id(), message_id);
        dropped.push((id, message_id));
    }
    // Then it works again, and confirms the next one.
    let _sim = hub.procedure_sim(&[PROCEDURE]);
    let answered = hub
        .submit_accepted(&maengel("Ampel an der Kreuzung ausgefallen"), None)
        .await;
    confirmed(&hub, &answered).await;

    // Past the deadline: the two dropped ones are overdue, the confirmed one is not.
    let series = format!("kopplung_awaiting_receipt{{procedure=\"{PROCEDURE}\"}}");
    hub.wait_for_metric(&series, 2.0).await;
    for (id, message_id) in &dropped {
        let status = hub.status(id).await;
        assert_eq!(status["status"], "delivered");
        assert_eq!(status["delivery"]["message_id"], message_id.as_str());
        let since = status["delivery"]["awaiting_receipt_since"]
            .as_str()
            .unwrap_or_else(|| panic!("{status:#}"));
        assert_eq!(since, status["delivery"]["delivered_at"], "{status:#}");
        let state = status["delivery"]["state"].as_str().unwrap();
        assert_eq!(state, format!("delivered, no receipt since {since}"));
    }
    assert!(hub.status(&answered).await["delivery"]["awaiting_receipt_since"].is_null());
    for token in [ADMIN_TOKEN, AUDITOR_TOKEN] {
        let (code, listed) = admin(
            &hub,
            "GET",
            &format!("/api/v1/admin/awaiting-receipt?procedure={PROCEDURE}"),
            token,
        )
        .await;
        assert_eq!(code, 200, "{listed}");
        let overdue: Vec<(&str, &str)> = listed["awaiting_receipt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["application_id"].as_str().unwrap(),
                    a["message_id"].as_str().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(&str, &str)> = dropped
            .iter()
            .map(|(id, m)| (id.as_str(), m.as_str()))
            .collect();
        assert_eq!(overdue, expected, "oldest first: {listed}");
    }
    let (ok, out) = awaiting_cli(&hub, &["list", "--ids"]);
    assert!(ok, "{out}");
    for (id, _) in &dropped {
        assert!(out.contains(id.as_str()), "{out}");
    }
    assert!(!out.contains(answered.as_str()), "{out}");

    // The console lists them by procedure; the application's page says since when.
    let mut operator = Browser::new(&hub);
    operator
        .log_in("/console/login", &[("token", ADMIN_TOKEN)])
        .await;
    let page = operator.get("/console/awaiting-receipt").await;
    assert_eq!(page.status, 200);
    let text = page.text();
    kopplung_tests::assert_has(&text, "Verfahren dresden-maengel: 2 Nachrichten");
    for (_, message_id) in &dropped {
        assert!(text.contains(message_id.as_str()), "{text}");
    }
    let application = format!("/console/applications/{}", dropped[1].0);
    let text = operator.get(&application).await.text();
    assert!(text.contains("keine Eingangsbestätigung seit"), "{text}");
    kopplung_tests::assert_has(&text, "Erneut senden (gleiche Nachrichten-ID)");

    // Auditors may read, not resend.
    let (code, problem) = resend(&hub, &dropped[0].0, AUDITOR_TOKEN).await;
    assert_eq!(code, 403, "{problem}");

    // A vendor's log names the message id: refused, naming the application to resend.
    let (ok, out) = awaiting_cli(&hub, &["resend", &dropped[0].1]);
    assert!(!ok, "{out}");
    assert!(out.contains("404"), "{out}");
    assert!(out.contains("not an application id"), "{out}");
    assert!(out.contains(dropped[0].0.as_str()), "{out}");
    // An unknown id is as much not found as a malformed one.
    for id in ["00000000-0000-4000-8000-000000000000", "K7QX-2M4P"] {
        let (code, problem) = resend(&hub, id, ADMIN_TOKEN).await;
        assert_eq!(code, 404, "{problem}");
        assert_eq!(problem["type"], "urn:kopplung:problem:not-found");
    }

    // One with the CLI: it goes out again with its message id, and is confirmed.
    let (ok, out) = awaiting_cli(&hub, &["resend", &dropped[0].0]);
    assert!(ok, "{out}");
    let first = confirmed(&hub, &dropped[0].0).await;
    assert_eq!(first["delivery"]["message_id"], dropped[0].1.as_str());
    let details = history(&first, "detail");
    assert!(
        details.iter().any(
            |d| d.contains("resent with the same message id by operator")
                && d.contains(&dropped[0].1)
        ),
        "{details:?}"
    );

    // The rest of the procedure's in the console, all at once.
    let csrf = csrf_of(&operator.get("/console/awaiting-receipt").await.text()).unwrap();
    let resent = operator
        .post(
            "/console/procedures/dresden-maengel/resend-overdue",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(resent.status, 303);
    assert_eq!(
        resent.header("location"),
        "/console/awaiting-receipt?gesendet=1"
    );
    let second = confirmed(&hub, &dropped[1].0).await;
    assert_eq!(second["delivery"]["message_id"], dropped[1].1.as_str());
    // Logged in fields, the operator's name a value of its own.
    let log = hub.log();
    assert!(
        log.lines()
            .any(|l| l.contains("message resent with its message id")
                && l.contains("procedure=dresden-maengel")
                && l.contains("bulk=true")),
        "{log}"
    );
    assert!(!log.contains("with every overdue message of"), "{log}");
    assert!(second["delivery"]["awaiting_receipt_since"].is_null());

    // Nothing overdue any more; one that has its receipt is not resent.
    hub.wait_for_metric(&series, 0.0).await;
    let text = operator.get("/console/awaiting-receipt").await.text();
    assert!(text.contains("Keine Nachricht wartet"), "{text}");
    let (code, problem) = resend(&hub, &dropped[0].0, ADMIN_TOKEN).await;
    assert_eq!(code, 409, "{problem}");
    assert_eq!(problem["type"], "urn:kopplung:problem:nothing-to-resend");
    kopplung_tests::shared::assert_audit_intact(&hub);
    delete_queue(&broker, &queue).await;
}

/// A procedure whose receivers de-duplicate may let the hub resend by itself
/// (`receipt_auto_resends`): once past the deadline the message goes out again with its
/// message id; dropped again, the hub stops at the limit and the operator decides.
#[tokio::test]
async fn the_hub_resends_by_itself_up_to_the_procedures_limit() {
    let (broker, hub, queue) = hub_with_deadline("receipt_auto_resends = 1").await;
    let body = maengel("Laterne am Terrassenufer defekt");
    let (id, delivered) = hub
        .submit_until(&body, "delivered", Duration::from_secs(60))
        .await;
    let message_id = delivered["delivery"]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = drain_one(&broker, &queue).await;

    // Past the deadline the hub sends it again by itself; the procedure drops it again.
    let resent = hub
        .wait_until(&id, "be resent by the hub", Duration::from_secs(60), |s| {
            history(s, "status")
                .iter()
                .filter(|status| **status == "delivered")
                .count()
                == 2
        })
        .await;
    let details = history(&resent, "detail");
    assert!(
        details
            .iter()
            .any(|d| d.contains(&message_id) && d.contains("by the hub, automatically (1 of 1")),
        "{details:?}"
    );
    let second = drain_one(&broker, &queue).await;
    assert_eq!(second.message_id(), message_id);
    assert_eq!(second.body, first.body, "the sealed message as stored");

    // The limit is reached: overdue again, and it stays so until an operator acts.
    let series = format!("kopplung_awaiting_receipt{{procedure=\"{PROCEDURE}\"}}");
    hub.wait_for_metric(&series, 1.0).await;
    let (code, listed) = admin(&hub, "GET", "/api/v1/admin/awaiting-receipt", AUDITOR_TOKEN).await;
    assert_eq!(code, 200, "{listed}");
    assert_eq!(listed["awaiting_receipt"][0]["application_id"], id.as_str());
    assert_eq!(listed["awaiting_receipt"][0]["resent"], 1, "{listed}");
    let more = drain(&broker, &queue, Duration::from_secs(3)).await;
    assert!(more.is_empty(), "no resend beyond the limit");
    assert_eq!(hub.status(&id).await["status"], "delivered");

    let _sim = hub.procedure_sim(&[PROCEDURE]);
    let (code, answer) = resend(&hub, &id, ADMIN_TOKEN).await;
    assert_eq!(code, 200, "{answer}");
    let received = confirmed(&hub, &id).await;
    assert_eq!(received["delivery"]["message_id"], message_id.as_str());
    delete_queue(&broker, &queue).await;
}
