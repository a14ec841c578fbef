//! Who the client is, network-wise: the TCP peer, or — when the peer is a trusted
//! reverse proxy — the address that proxy names in its header (`X-Forwarded-For` by
//! default). Only configured proxies are believed; anyone else could write the header.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use serde::Deserialize;

use crate::Error;

/// The client's address as the server layer resolved it (an extension of every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// `[limits]` settings for clients behind reverse proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Addresses or networks of the reverse proxies in front (e.g. `"10.0.0.0/8"`).
    pub trusted_proxies: Vec<String>,
    /// The header they put the client's address in; `X-Forwarded-For` if not given.
    pub client_address_header: Option<String>,
}

impl ProxyConfig {
    /// Checks the settings and builds the resolver; errors name the key.
    pub fn build(&self) -> Result<ClientAddresses, Error> {
        let trusted = self
            .trusted_proxies
            .iter()
            .map(|text| {
                IpNet::from_str(text)
                    .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
                    .map_err(|_| Error::Config {
                        key: "trusted_proxies",
                        message: format!("`{text}` is no IP address or network (CIDR)"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let header = match &self.client_address_header {
            Some(name) => HeaderName::from_str(name).map_err(|_| Error::Config {
                key: "client_address_header",
                message: format!("`{name}` is no HTTP header name"),
            })?,
            None => HeaderName::from_static("x-forwarded-for"),
        };
        Ok(ClientAddresses { trusted, header })
    }
}

/// Resolves client addresses (see the module documentation).
#[derive(Debug, Clone)]
pub struct ClientAddresses {
    trusted: Vec<IpNet>,
    header: HeaderName,
}

impl Default for ClientAddresses {
    fn default() -> Self {
        Self {
            trusted: Vec::new(),
            header: HeaderName::from_static("x-forwarded-for"),
        }
    }
}

impl ClientAddresses {
    /// Whether `address` is one of the trusted proxies.
    pub fn is_trusted(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.trusted.iter().any(|net| net.contains(&address))
    }

    /// The client of a request that came from `peer`: the peer itself unless it is a
    /// trusted proxy; then the right-most address in the header that is not a trusted
    /// proxy (proxies append, so what is left of it came from the client and is not
    /// believed).
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return peer;
        }
        let named: Vec<IpAddr> = headers
            .get_all(&self.header)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|part| parse_address(part.trim()))
            .collect();
        named
            .into_iter()
            .rev()
            .find(|address| !self.is_trusted(*address))
            .unwrap_or(peer)
    }
}

/// An address as `X-Forwarded-For` writes it: `192.0.2.1`, `2001:db8::1`,
/// `[2001:db8::1]:443` or `192.0.2.1:5000`.
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(address) = IpAddr::from_str(text) {
        return Some(canonical(address));
    }
    if let Ok(socket) = std::net::SocketAddr::from_str(text) {
        return Some(canonical(socket.ip()));
    }
    None
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The unit limits count per address: an IPv4 address, or the /64 network of an IPv6
/// one (one subscriber usually has a whole /64).
pub fn limit_address(address: IpAddr) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            IpAddr::V6(Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let resolver = ProxyConfig {
            trusted_proxies: vec!["10.0.0.0/8".into(), "192.0.2.10".into()],
            client_address_header: None,
        }
        .build()
        .unwrap();
        let forwarded = headers(&["203.0.113.5"]);
        // A peer that is no proxy speaks for itself, whatever it writes.
        assert_eq!(
            resolver.resolve(ip("198.51.100.1"), &forwarded),
            ip("198.51.100.1")
        );
        assert_eq!(
            resolver.resolve(ip("10.1.2.3"), &forwarded),
            ip("203.0.113.5")
        );
        // A client that writes its own header cannot hide behind it: the right-most
        // untrusted entry is the one the proxy saw.
        let spoofed = headers(&["1.2.3.4, 203.0.113.5", "192.0.2.10"]);
        assert_eq!(
            resolver.resolve(ip("10.0.0.1"), &spoofed),
            ip("203.0.113.5")
        );
        // No usable header: the proxy itself.
        assert_eq!(
            resolver.resolve(ip("10.0.0.1"), &headers(&["junk"])),
            ip("10.0.0.1")
        );
        assert_eq!(
            resolver.resolve(ip("::ffff:10.0.0.1"), &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn bad_settings_name_their_key() {
        let error = ProxyConfig {
            trusted_proxies: vec!["10.0.0.0/33".into()],
            client_address_header: None,
        }
        .build()
        .unwrap_err();
        assert!(error.to_string().contains("trusted_proxies"), "{error}");
        let error = ProxyConfig {
            trusted_proxies: vec![],
            client_address_header: Some("bad header".into()),
        }
        .build()
        .unwrap_err();
        assert!(
            error.to_string().contains("client_address_header"),
            "{error}"
        );
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        assert_eq!(
            limit_address(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(limit_address(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
