//! Addresses and port specs: IPv4 subnets for IPAM, `-p` specs as Docker writes them.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::NetError;

/// An IPv4 network, `addr/prefix` with the host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The `n`th address of the network (0 = the network address).
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix);
        // The last address is the broadcast address.
        (u64::from(n) + 1 < size).then(|| Ipv4Addr::from(u32::from(self.addr) + n))
    }

    /// The gateway: the first host address (the bridge's).
    pub fn gateway(&self) -> Ipv4Addr {
        self.host(1).unwrap_or(self.addr)
    }

    /// Whether the whole network is in a private range (RFC 1918), so it is only ever local.
    pub fn is_private(&self) -> bool {
        self.addr.is_private() && self.prefix >= 8 && {
            let last = Ipv4Addr::from(u32::from(self.addr) | !self.mask());
            last.is_private()
        }
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |why: &str| NetError::Invalid {
            what: "subnet",
            value: s.to_owned(),
            why: why.to_owned(),
        };
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDR/PREFIX"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| bad("bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be between 8 and 30"));
        }
        let net = Subnet { addr, prefix };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(bad("host bits are set"));
        }
        Ok(net)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A published port: host address and port to the container's port. `host_port` 0 means
/// "any free port", chosen when the port is published.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec {
    /// `None`: every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl std::str::FromStr for PortSpec {
    type Err = NetError;
    /// `[IP:][HOST:]CONTAINER[/tcp|udp]`; `IP::CONTAINER` picks a free host port.
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |why: &str| NetError::Invalid {
            what: "port spec",
            value: s.to_owned(),
            why: why.to_owned(),
        };
        let (rest, proto) = match s.rsplit_once('/') {
            Some((r, "tcp")) => (r, Proto::Tcp),
            Some((r, "udp")) => (r, Proto::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, ctr) = match parts.as_slice() {
            [c] => (None, "", *c),
            [h, c] => (None, *h, *c),
            [i, h, c] => (Some(*i), *h, *c),
            _ => return Err(bad("expected [IP:][HOST:]CONTAINER[/PROTO]")),
        };
        let host_ip = match ip {
            None | Some("") | Some("0.0.0.0") => None,
            Some(i) => Some(
                i.parse::<Ipv4Addr>()
                    .map_err(|_| bad("the host address must be IPv4"))?,
            ),
        };
        let port = |p: &str| -> Result<u16, NetError> {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad(
                    "ports are numbers from 1 to 65535 (ranges are not supported)",
                )),
            }
        };
        Ok(PortSpec {
            host_ip,
            host_port: if host.is_empty() { 0 } else { port(host)? },
            container_port: port(ctr)?,
            proto,
        })
    }
}

impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self
            .host_ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "0.0.0.0".into());
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port,
            self.container_port,
            self.proto.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_compare() {
        let s: Subnet = "10.88.0.0/16".parse().unwrap();
        assert!(s.contains("10.88.3.4".parse().unwrap()));
        assert!(!s.contains("10.89.0.1".parse().unwrap()));
        assert_eq!(s.gateway(), "10.88.0.1".parse::<Ipv4Addr>().unwrap());
        assert!(s.overlaps(&"10.0.0.0/8".parse().unwrap()));
        assert!(!s.overlaps(&"10.89.0.0/16".parse().unwrap()));
        assert!(s.is_private());
        assert!(!"8.8.0.0/16".parse::<Subnet>().unwrap().is_private());
        assert!("10.88.0.1/16".parse::<Subnet>().is_err());
        assert!("10.88.0.0/31".parse::<Subnet>().is_err());
        let small: Subnet = "192.168.7.0/30".parse().unwrap();
        assert_eq!(small.host(2), Some("192.168.7.2".parse().unwrap()));
        assert_eq!(small.host(3), None, "broadcast is not a host");
    }

    #[test]
    fn port_specs_follow_docker() {
        let p: PortSpec = "127.0.0.1:8080:80/udp".parse().unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (8080, 80, Proto::Udp)
        );
        let p: PortSpec = "8080:80".parse().unwrap();
        assert_eq!((p.host_ip, p.host_port, p.proto), (None, 8080, Proto::Tcp));
        let p: PortSpec = "80".parse().unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p: PortSpec = "127.0.0.1::80".parse().unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        for bad in [
            "",
            "x:80",
            "80/sctp",
            "1:2:3:4",
            "0:80",
            "70000:80",
            "::1:80:80",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad} parsed");
        }
    }
}
