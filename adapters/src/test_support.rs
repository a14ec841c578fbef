//! What the transports' tests share.

/// A local port nobody listens on (bound once, then released): connecting is refused.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// An HTTP receiver on loopback that answers every POST to `path` with `handle`;
/// returns its URL.
pub(crate) async fn receiver<F, Fut, R>(path: &str, handle: F) -> String
where
    F: Fn(axum::http::HeaderMap, bytes::Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: axum::response::IntoResponse + 'static,
{
    let app = axum::Router::new().route(
        path,
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            handle(headers, body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}{path}")
}
