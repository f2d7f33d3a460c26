//! Address rules shared by every outbound call (provider endpoints, notification receivers).

/// Whether `ip` is link-local or a cloud metadata address (169.254.0.0/16, fe80::/10,
/// fd00:ec2::254, and their IPv4-mapped forms): where a cloud instance's metadata service
/// answers, which outbound calls refuse unless told otherwise (SSRF).
pub fn is_link_local(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.is_link_local();
            }
            let metadata = std::net::Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);
            (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == metadata
        }
    }
}

/// The shape of every URL cloudbill calls (a provider's endpoint, a channel's receiver), as
/// the API document's pattern says it: `http` or `https`, a host name of letters, digits, `.`
/// and `-` (or an IPv4 address), an optional port 1 to 65535, an optional path of URL
/// characters — no user, query or fragment, nothing a parser might read two ways. The
/// server also takes an IPv6 literal in brackets (`http://[::1]:8080/`), which the pattern
/// leaves out.
pub const URL_PATTERN: &str = "^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$";

/// Whether `raw` has the shape of [`URL_PATTERN`] (checked without a regex engine).
pub fn plain_url(raw: &str) -> bool {
    let Some(rest) = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
    else {
        return false;
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    // An IPv6 literal in brackets (the server takes one; the document's pattern leaves it out).
    let (host, port) = match authority.strip_prefix('[').and_then(|a| a.split_once(']')) {
        Some((v6, after)) => {
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return false;
            }
            match after.strip_prefix(':') {
                Some(p) => ("v6", Some(p)),
                None if after.is_empty() => ("v6", None),
                None => return false,
            }
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let host_ok = (1..=253).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && host
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && host
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && !p.starts_with('0')
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n))
    });
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~%!$&'()*+,;=:@/-".contains(&b));
    host_ok && port_ok && path_ok
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_urls_are_what_the_document_says() {
        for ok in [
            "http://127.0.0.1:9/hook",
            "https://hooks.slack.com/services/T0/B0/X",
            "https://example.com",
            "http://a:65535/",
            "http://[::1]:8080/x",
            "http://[fd00:ec2::254]",
        ] {
            assert!(super::plain_url(ok), "{ok}");
        }
        for bad in [
            "ftp://a/",
            "http://",
            "http://-a/",
            "http://a:0/",
            "http://a:65536/",
            "http://a:080/",
            "http://u:p@a/",
            "http://[::::1]/",
            "http://[::1]x/",
            "http://a/b c",
            "http://a/?q=1",
            "http://a/#f",
            "HTTP://a/",
        ] {
            assert!(!super::plain_url(bad), "{bad}");
        }
    }
}
