//! The hub's memory while one large attachment passes through.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use kopplung_tests::{TestHub, delete_queue};
use serde_json::json;

use crate::broker::consume;
use crate::system::status_kib;

pub struct AttachmentRss {
    pub before_mb: f64,
    pub peak_mb: f64,
    pub fragments: u64,
}

/// Uploads a PDF of `size` bytes, submits a Gewerbeanmeldung for Dresden naming it,
/// waits for the message on the procedure's queue and fetches every fragment as the
/// procedure would. The hub's peak RSS is reset (clear_refs) after a warm-up round.
pub async fn attachment_rss(hub: &TestHub, size: usize) -> anyhow::Result<AttachmentRss> {
    let pid = hub.pid().context("the hub runs")?;
    let queue = hub.queue("dresden-buergerbuero");
    let (connection, mut consumer) = consume(&queue, "bench-attachment").await?;
    let http = reqwest::Client::new();
    let token = kopplung_tests::procedure_token("dresden-buergerbuero");
    attachment_round(hub, &http, &token, &mut consumer, 1024 * 1024).await?;
    // Reset the peak to the current RSS (Linux clear_refs, value 5).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("clear_refs")?;
    let before_mb = status_kib(pid, "VmRSS")? as f64 / 1024.0;
    let fragments = attachment_round(hub, &http, &token, &mut consumer, size).await?;
    let peak_mb = status_kib(pid, "VmHWM")? as f64 / 1024.0;
    delete_queue(&connection, &queue).await;
    Ok(AttachmentRss {
        before_mb,
        peak_mb,
        fragments,
    })
}

/// One round of [`attachment_rss`]: upload, submit, receive, fetch every fragment.
pub async fn attachment_round(
    hub: &TestHub,
    http: &reqwest::Client,
    token: &str,
    consumer: &mut lapin::Consumer,
    size: usize,
) -> anyhow::Result<u64> {
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(size, 0x5a);
    let uploaded: serde_json::Value = success(
        http.post(hub.url("/api/v1/attachments?filename=Lageplan.pdf"))
            .bearer_auth(&hub.token)
            .header("content-type", "application/pdf")
            .body(pdf),
    )
    .await?
    .json()
    .await?;
    let mut body = kopplung_tests::shared::fixture_request(
        "gewerbeanmeldung/fixtures/minimal",
        "99050012104000",
        "146120000000",
    );
    body["attachments"] = json!([{ "upload": uploaded["id"] }]);
    success(
        http.post(hub.url("/api/v1/applications"))
            .bearer_auth(&hub.token)
            .json(&body),
    )
    .await?;
    let delivery = tokio::time::timeout(Duration::from_secs(60), consumer.next())
        .await
        .context("no message within 60 s")?
        .context("consumer ended")??;
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .context("message id")?
        .to_string();
    let fragments = (size as u64).div_ceil(1024 * 1024);
    for k in 1..=fragments {
        let fragment = success(
            http.get(hub.url(&format!(
                "/api/v1/procedures/dresden-buergerbuero/messages/{message_id}/attachments/1/{k}"
            )))
            .bearer_auth(token),
        )
        .await?
        .bytes()
        .await?;
        anyhow::ensure!(!fragment.is_empty(), "an empty fragment");
    }
    Ok(fragments)
}

/// Sends `request`: the answer, if its status is a success.
async fn success(request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
    Ok(request.send().await?.error_for_status()?)
}
