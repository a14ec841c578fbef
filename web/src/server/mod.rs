//! The HTTP server of the hub and the portal: axum's router on hyper, with the limits
//! that keep anonymous clients from taking it down (`docs/reliability.md`, "Hostile
//! clients").
//!
//! - **Heads in time.** A connection must send a complete request head within
//!   `header_timeout_secs` of its accept (or, kept alive, of its next first byte); a
//!   silent or trickling one is closed. Between requests it may idle
//!   `idle_timeout_secs`.
//! - **Bodies in time.** A body must arrive within `request_timeout_secs`: `408` and
//!   the connection is closed.
//! - **Caps.** A listener holds at most `max_connections` (never more than the open
//!   file limit, which is raised to its hard limit at start), one address at most
//!   `max_connections_per_peer`. At the cap the oldest connection that is between
//!   requests is closed for the newcomer; when all are serving, the newcomer gets an
//!   immediate `503`. Requests being served always go on.
//! - **Small buffers.** A head is at most `max_head_bytes`; bodies are read as the
//!   handler asks, so what is buffered per connection before authentication stays small.
//!
//! Graceful shutdown as with `axum::serve`: stop accepting, let requests in flight
//! finish, then return.

mod connection;
pub mod limits;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::client::{ClientAddr, ClientAddresses, limit_address};
use connection::{Cut, Refusal, RequestGuard, Tracked};
pub use limits::ServerLimits;

/// File descriptors kept free of connections: stores, the broker, outgoing HTTP.
const RESERVED_FILES: u64 = 256;
/// Listeners a process may run (the demo: hub and portal) share the file limit.
const LISTENERS_PER_PROCESS: u64 = 2;

/// Counters of one listener, for `/metrics`: every event is also logged.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub accepted: AtomicU64,
    /// Refused because the peer had its share.
    pub refused_peer: AtomicU64,
    /// Refused because the listener was full of connections serving requests.
    pub refused_full: AtomicU64,
    /// Closed while idle to make room for a new one.
    pub evicted: AtomicU64,
    /// Closed without a complete request head in time.
    pub header_timeouts: AtomicU64,
    /// Closed after idling between requests.
    pub idle_timeouts: AtomicU64,
    /// Requests answered 408 because the body did not arrive in time.
    pub body_timeouts: AtomicU64,
    /// Open now: admitted within the caps (a connection closed for a newcomer no longer
    /// counts, even while its socket is being torn down).
    pub open: Arc<AtomicU64>,
}

type TimeoutAnswer = Arc<dyn Fn(Duration) -> Response + Send + Sync>;

/// One listener's server.
#[derive(Clone)]
pub struct Server {
    limits: ServerLimits,
    clients: ClientAddresses,
    stats: Arc<ServerStats>,
    timeout_answer: TimeoutAnswer,
    name: &'static str,
}

impl Server {
    /// A server named `name` in logs (`hub`, `portal`).
    pub fn new(name: &'static str, limits: ServerLimits, clients: ClientAddresses) -> Self {
        Self {
            limits,
            clients,
            stats: Arc::default(),
            timeout_answer: Arc::new(|limit| {
                (
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the whole request must arrive within {} seconds",
                        limit.as_secs()
                    ),
                )
                    .into_response()
            }),
            name,
        }
    }

    /// How a request whose body came too late is answered (the hub: problem+json; the
    /// portal: a German page). `Connection: close` is added.
    pub fn on_body_timeout(
        mut self,
        answer: impl Fn(Duration) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.timeout_answer = Arc::new(answer);
        self
    }

    /// A server for another listener of the same process: the same limits, its own
    /// counters.
    pub fn clone_named(&self, name: &'static str) -> Self {
        Self {
            stats: Arc::default(),
            name,
            ..self.clone()
        }
    }

    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }

    /// The connection cap in force: the configured one, within the file limit.
    pub fn effective_max_connections(&self) -> usize {
        let files = open_file_limit();
        let fitting = files.saturating_sub(RESERVED_FILES) / LISTENERS_PER_PROCESS;
        self.limits
            .max_connections
            .min(usize::try_from(fitting).unwrap_or(usize::MAX))
            .max(1)
    }

    /// Serves `app` on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let max = self.effective_max_connections();
        if max < self.limits.max_connections {
            tracing::warn!(
                server = self.name,
                configured = self.limits.max_connections,
                max,
                "max_connections lowered to fit the open file limit (ulimit -n)"
            );
        }
        let app = {
            let (limit, stats, answer) = (
                self.limits.request_timeout(),
                self.stats.clone(),
                self.timeout_answer.clone(),
            );
            app.layer(axum::middleware::from_fn(move |request, next| {
                body_deadline(request, next, limit, stats.clone(), answer.clone())
            }))
        };
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let registry = Arc::new(connection::Registry::new(self.stats.open.clone()));
        let mut connections = tokio::task::JoinSet::new();
        let mut accepting = stopped.clone();
        let mut refusals_logged = RateLimitedLog::default();
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment, go on.
                        tracing::warn!(server = self.name, error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                // In a block of its own: the watch's guard must not end up in the
                // select's output, or `serve` could not be spawned (not `Send`).
                () = async { let _ = accepting.wait_for(|stop| *stop).await; } => break,
            };
            while connections.try_join_next().is_some() {}
            let peer = limit_address(remote.ip());
            let capped = !self.clients.is_trusted(remote.ip());
            let admitted =
                match registry.admit(peer, capped, max, self.limits.max_connections_per_peer) {
                    Ok(admitted) => admitted,
                    Err(refusal) => {
                        let (counter, why) = match refusal {
                            Refusal::PeerFull => {
                                (&self.stats.refused_peer, "the peer has its share")
                            }
                            Refusal::Full => (
                                &self.stats.refused_full,
                                "every connection serves a request",
                            ),
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        if refusals_logged.due() {
                            tracing::warn!(
                                server = self.name,
                                reason = why,
                                "connections refused at the cap"
                            );
                        }
                        // A short answer if the socket takes it at once; never wait.
                        let _ = stream.try_write(REFUSED);
                        continue;
                    }
                };
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            if admitted.evicted_other {
                self.stats.evicted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(server = self.name, "closed an idle connection to make room");
            }
            let server = self.clone();
            let app = app.clone();
            let stopped = stopped.clone();
            connections.spawn(async move {
                server
                    .connection(stream, remote, app, admitted, stopped)
                    .await;
            });
        }
        drop(listener);
        while connections.join_next().await.is_some() {}
        Ok(())
    }

    async fn connection(
        &self,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
        app: Router,
        admitted: connection::Admitted,
        mut stopped: watch::Receiver<bool>,
    ) {
        let activity = admitted.activity.clone();
        let clients = self.clients.clone();
        let service = {
            let activity = activity.clone();
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let guard = activity.begin_request();
                let client = ClientAddr(clients.resolve(remote.ip(), request.headers()));
                let has_body = !http_body::Body::is_end_stream(request.body());
                let read = Arc::new(AtomicBool::new(!has_body));
                let mut request = {
                    let read = read.clone();
                    request.map(move |body| Body::new(Watched { body, read }))
                };
                request.extensions_mut().insert(ConnectInfo(remote));
                request.extensions_mut().insert(client);
                let app = app.clone();
                // Boxed so that the connection can be polled without shutdown (see
                // `linger`), which needs an `Unpin` future.
                Box::pin(async move {
                    let mut response = app.oneshot(request).await?;
                    // Answered before the body was read (a refusal): the connection
                    // cannot carry another request, and the client must not put it back
                    // into its pool, or its next request there meets a closed socket.
                    if !read.load(Ordering::SeqCst) {
                        response
                            .headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok::<_, Infallible>(response.map(|body| {
                        Body::new(Guarded {
                            body,
                            _guard: guard,
                        })
                    }))
                })
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // hyper starts its head timer right after each answer, which would cut
            // kept-alive connections at the head deadline: the watchdog is the
            // authority; hyper's timer only a backstop beyond it.
            .header_read_timeout(self.limits.header_timeout() + self.limits.idle_timeout())
            .max_buf_size(self.limits.max_head_bytes);
        let mut connection = builder.serve_connection(
            TokioIo::new(Tracked::new(stream, activity.clone())),
            service,
        );
        let ended = tokio::select! {
            result = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => Some(result),
            cut = activity.watchdog(&self.limits) => {
                match cut {
                    Cut::Header => {
                        self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(server = self.name, "closed: no complete request head in time");
                    }
                    Cut::Idle => {
                        self.stats.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None
            }
            _ = admitted.evict.notified() => None,
            () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
                Pin::new(&mut connection).graceful_shutdown();
                tokio::select! {
                    result = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => Some(result),
                    // A connection that never completes its request is not waited for.
                    _ = activity.watchdog(&self.limits) => None,
                }
            }
        };
        match ended {
            Some(Ok(())) => {
                let stream = connection.into_parts().io.into_inner().into_inner();
                linger(stream).await;
            }
            Some(Err(e)) => {
                tracing::debug!(server = self.name, error = %e, "connection ended with an error");
            }
            // Cut by a deadline or for a newcomer: dropping closes the socket.
            None => {}
        }
    }
}

/// How long, and how much, a closing connection still reads what the client sends: a
/// refused upload of the size a service allows must still get its answer read.
const LINGER_TIME: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 32 * 1024 * 1024;

/// Closes a connection after its last answer the way browsers and HTTP clients need it
/// ("lingering close"): our side's FIN first, then whatever the client still sends (a
/// request body we refused without reading) is read and dropped for a moment. Closing
/// at once with unread bytes would make the kernel reset the connection, and a reset
/// can reach the client before it has read our answer.
async fn linger(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buffer = [0u8; 8192];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => drained += n,
        }
    }
}

/// The answer to a connection refused at the cap.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 29\r\n\r\ntoo many connections, retry\r\n";

/// The process's open file limit, after raising the soft limit to the hard one (once).
pub fn open_file_limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    })
}

/// A response body that ends its request (for the connection's idle timing) when it
/// has been sent or dropped.
struct Guarded {
    body: Body,
    _guard: RequestGuard,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A request body that notes when it has been read to its end.
struct Watched {
    body: hyper::body::Incoming,
    read: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.read.store(true, Ordering::SeqCst);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Logs a repeated event at most every ten seconds (attackers must not flood the log).
#[derive(Default)]
struct RateLimitedLog {
    last: Option<tokio::time::Instant>,
}

impl RateLimitedLog {
    fn due(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(10));
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// The body did not arrive within the request time limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the time limit")]
struct BodyTimedOut;

/// Gives the request body a deadline; if the body misses it, the answer is the
/// server's timeout answer whatever the handler made of the broken body, and the
/// connection is closed.
async fn body_deadline(
    request: Request,
    next: Next,
    limit: Duration,
    stats: Arc<ServerStats>,
    answer: TimeoutAnswer,
) -> Response {
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
    stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
    let mut response = answer(limit);
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serve_can_be_spawned_and_stops_when_told() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::new("test", ServerLimits::default(), ClientAddresses::default());
        // tokio::spawn needs the future to be `Send` (the demo spawns the portal).
        let served = tokio::spawn(server.serve(listener, Router::new(), async {}));
        served.await.unwrap().unwrap();
    }
}
