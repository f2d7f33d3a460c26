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
