//! What the transports' tests share.

/// A local port nobody listens on (bound once, then released): connecting is refused.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
