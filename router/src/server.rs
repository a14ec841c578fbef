//! The HTTP server loop: axum's router on hyper, with time limits for slow clients.
//!
//! `axum::serve` reads request heads and bodies without any time limit, so a client that
//! sends a byte a second (slowloris) holds its connection and, with a body, a handler
//! for as long as it likes. Here every request must arrive completely within
//! `[limits] request_timeout_secs`: the head (hyper closes the connection otherwise) and
//! the body (the request is answered `408 request-timeout` and the connection closed).
//! Graceful shutdown as with `axum::serve`: stop accepting, let requests in flight
//! finish, then return.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::problem::Problem;

/// The body did not arrive within the request time limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the time limit")]
struct BodyTimedOut;

/// Serves `app` on `listener` until `shutdown` completes; every request must arrive
/// within `request_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    request_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn(move |request, next| {
        body_deadline(request, next, request_timeout)
    }));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let mut connections = tokio::task::JoinSet::new();
    let mut accepting = stopped.clone();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = accepting.wait_for(|stop| *stop) => break,
        };
        // Finished connections leave the set as new ones come.
        while connections.try_join_next().is_some() {}
        let service = TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectInfo::<
            SocketAddr,
        >(
            remote
        ))));
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(request_timeout);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = stopped.wait_for(|stop| *stop) => {
                    connection.as_mut().graceful_shutdown();
                }
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Gives the request body a deadline; if the body misses it, the answer is 408 whatever
/// the handler made of the broken body, and the connection is closed.
async fn body_deadline(request: Request, next: Next, limit: Duration) -> Response {
    let deadline = tokio::time::Instant::now() + limit;
    let timed_out = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let flag = timed_out.clone();
    let stream = futures_util::stream::unfold(
        (body.into_data_stream(), false),
        move |(mut stream, done)| {
            let flag = flag.clone();
            async move {
                if done {
                    return None;
                }
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(chunk)) => Some((chunk, (stream, false))),
                    Ok(None) => None,
                    Err(_) => {
                        flag.store(true, Ordering::SeqCst);
                        Some((Err(axum::Error::new(BodyTimedOut)), (stream, true)))
                    }
                }
            }
        },
    );
    let response = next
        .run(Request::from_parts(parts, Body::from_stream(stream)))
        .await;
    if !timed_out.load(Ordering::SeqCst) {
        return response;
    }
    let mut response = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "request-timeout",
        "The request did not arrive in time",
    )
    .detail(format!(
        "the whole request must arrive within {} seconds",
        limit.as_secs()
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
