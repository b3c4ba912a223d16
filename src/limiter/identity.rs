//! Who the client is: the socket peer, unless the peer is a trusted proxy, in
//! which case the rightmost address in the header the proxies set
//! (`FORWARDED_HEADER`) that is not itself a trusted proxy. A forwarded
//! header from anyone else, and the other header from anyone, is ignored: a
//! proxy that sets one passes the other on as the client wrote it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use poem::http::HeaderMap;

use crate::config::{ForwardedHeader, TrustedProxies};

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Who a request comes from, by the trusted-proxy rules of the settings: one value shared
/// by every per-client limit (rate limits, sign-in failures, dashboard streams).
#[derive(Debug, Clone, Default)]
pub struct Identify {
    pub trusted: TrustedProxies,
    pub header: ForwardedHeader,
}

impl Identify {
    /// The client's address and the key it is counted under.
    pub fn client(&self, req: &poem::Request) -> (IpAddr, ClientKey) {
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |a| a.ip());
        let ip = client_ip(peer, req.headers(), &self.trusted, self.header);
        (ip, ClientKey::of(ip))
    }
}

/// The client's address, as far as we can trust it.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
    header: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let hops = forwarded_hops(headers, header);
    // The nearest address we know: the peer, then each trusted hop we walk past.
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if trusted.contains(*ip) => nearest = *ip,
            Some(ip) => return *ip,
            // An unparseable hop ends what we can believe.
            None => break,
        }
    }
    nearest
}

/// Whom the limiter counts: the address, or its /64 for IPv6 (one host
/// usually holds a whole /64, so per-address keys would be free quota).
/// `Copy` and hashable, so a decision served from a lease builds no string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Self(IpAddr::V6(Ipv6Addr::new(
                    s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                )))
            }
            v4 => Self(v4),
        }
    }
}

/// As it appears in Redis keys: `203.0.113.7`, `2001:db8:1:2::/64`.
impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(net) => write!(f, "{net}/64"),
        }
    }
}

/// Forwarded hops in `header`, left (farthest) to right (nearest). Values are split into
/// hops on their raw bytes and each hop is read on its own, so one unreadable hop (a
/// non-ASCII byte, say) is `None` in its place instead of hiding every hop of its line.
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let (name, parse): (&str, fn(&str) -> Option<IpAddr>) = match header {
        ForwardedHeader::Forwarded => ("forwarded", parse_forwarded_element),
        ForwardedHeader::XForwardedFor => ("x-forwarded-for", parse_node),
    };
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|hop| std::str::from_utf8(hop).ok().and_then(parse))
        .collect()
}

/// The `for=` node of one `Forwarded` element (`for=1.2.3.4;proto=https`).
fn parse_forwarded_element(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
        .and_then(|(_, v)| parse_node(v))
}

/// An address with optional quotes, brackets and port; anything else is `None`.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn trusted(cidrs: &[&str]) -> TrustedProxies {
        TrustedProxies(cidrs.iter().map(|c| c.parse().expect("cidr")).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(
            client_ip(ip("9.9.9.9"), &h, &trusted(&[]), XFF),
            ip("9.9.9.9")
        );
        assert_eq!(
            client_ip(ip("9.9.9.9"), &h, &trusted(&["10.0.0.0/8"]), XFF),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn trusted_proxy_yields_the_rightmost_untrusted_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2")]);
        // 6.6.6.6 was written by the client itself: not believed.
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t, XFF), ip("1.2.3.4"));
        let split = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "1.2.3.4:5555"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &split, &t, XFF), ip("1.2.3.4"));
    }

    #[test]
    fn forwarded_header_is_understood() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.1.1.1"#,
        )]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &t, ForwardedHeader::Forwarded),
            ip("2001:db8:cafe::17")
        );
    }

    /// nginx sets X-Forwarded-For and passes a client's own `Forwarded` on
    /// untouched (and a proxy set to `Forwarded` passes X-Forwarded-For on):
    /// reading the other header would let a client pick its own identity.
    #[test]
    fn only_the_configured_header_is_read() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t, XFF), ip("1.2.3.4"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &t, ForwardedHeader::Forwarded),
            ip("5.6.7.8")
        );
        let only_forwarded = headers(&[("forwarded", "for=5.6.7.8")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &only_forwarded, &t, XFF),
            ip("10.0.0.1"),
            "no X-Forwarded-For: the proxy itself is the nearest address known"
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_nearest_trusted_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4, <script>, 10.0.0.9")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t, XFF), ip("10.0.0.9"));
        let none = headers(&[]);
        assert_eq!(client_ip(ip("10.0.0.1"), &none, &t, XFF), ip("10.0.0.1"));
    }

    /// A client behind the proxy writes an unreadable hop of its own (`\\x80`): the proxy
    /// appends the client's address after it, and that address is the client's identity.
    /// Before, the whole line was unreadable and the client was counted as the proxy.
    #[test]
    fn an_unreadable_hop_left_of_the_client_changes_nothing() {
        let t = trusted(&["10.0.0.0/8"]);
        for raw in [
            &b"\x80, 203.0.113.9"[..],
            b"\xff\xfe, 6.6.6.6, 203.0.113.9",
            b"\x80,203.0.113.9, 10.0.0.2",
        ] {
            let mut h = HeaderMap::new();
            h.append(
                "x-forwarded-for",
                HeaderValue::from_bytes(raw).expect("obs-text"),
            );
            assert_eq!(
                client_ip(ip("10.0.0.1"), &h, &t, XFF),
                ip("203.0.113.9"),
                "{}",
                raw.escape_ascii()
            );
        }
        let mut h = HeaderMap::new();
        h.append(
            "forwarded",
            HeaderValue::from_bytes(b"for=\"\x80\", for=203.0.113.9;proto=https")
                .expect("obs-text"),
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &t, ForwardedHeader::Forwarded),
            ip("203.0.113.9")
        );
        // Unreadable to the right of every readable address still ends the walk there.
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.9, \x80").expect("obs-text"),
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t, XFF), ip("10.0.0.1"));
    }

    #[test]
    fn keys_group_ipv6_by_64_and_unmap_ipv4() {
        let key = |s: &str| ClientKey::of(ip(s)).to_string();
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("::ffff:1.2.3.4"), "1.2.3.4");
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2::9")),
            ClientKey::of(ip("2001:db8:1:2:ffff::1")),
            "one /64, one client"
        );
        let h = headers(&[]);
        assert_eq!(
            client_ip(ip("::ffff:1.2.3.4"), &h, &trusted(&[]), XFF),
            ip("1.2.3.4")
        );
    }
}
