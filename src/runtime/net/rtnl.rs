//! The few rtnetlink requests a container's interface needs, sent in-process: a veth pair with
//! one end in the container's namespace and the other on a bridge, an address, the default
//! route, links up, a link deleted.
//!
//! Why not the `ip` tool here (as for everything else, see [`super::cmd`]): these run at every
//! container create and remove, where a process per step cost more than the kernel work
//! itself. The messages are the kernel's stable rtnetlink ABI (linux/rtnetlink.h,
//! linux/if_link.h, linux/veth.h), built by hand: no unsafe code, every request acknowledged.
//! A request runs in the namespace of the calling thread (see [`super::cmd`]'s `in_netns`).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFF_UP: u32 = 0x1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const NLA_F_NESTED: u16 = 0x8000;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// A request being built: the header is filled in by [`Rtnl::request`].
struct Msg(Vec<u8>);

impl Msg {
    fn new() -> Self {
        Msg(vec![0; 16])
    }

    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self.pad();
        self
    }

    /// `struct ifinfomsg`: family, type, index, flags, change.
    fn ifinfo(self, index: i32, flags: u32, change: u32) -> Self {
        let mut b = [0u8; 16];
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        b[8..12].copy_from_slice(&flags.to_ne_bytes());
        b[12..16].copy_from_slice(&change.to_ne_bytes());
        self.bytes(&b)
    }

    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    fn attr(mut self, ty: u16, data: &[u8]) -> Self {
        self.0
            .extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.pad();
        self
    }

    fn name(self, ty: u16, s: &str) -> Self {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d)
    }

    /// A nested attribute whose content `f` appends.
    fn nest(mut self, ty: u16, f: impl FnOnce(Msg) -> Msg) -> Self {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        let mut m = f(self);
        let len = (m.0.len() - start) as u16;
        m.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        m
    }
}

/// An rtnetlink socket in the calling thread's network namespace.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Rtnl { fd, seq: 0 })
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Send `m` as a `ty` request and wait for its answer: the first message of the reply
    /// (its payload) for a get, an empty payload for an acknowledged change.
    fn request(&mut self, ty: u16, flags: u16, mut m: Msg) -> io::Result<Vec<u8>> {
        self.seq += 1;
        let len = m.0.len() as u32;
        m.0[0..4].copy_from_slice(&len.to_ne_bytes());
        m.0[4..6].copy_from_slice(&ty.to_ne_bytes());
        m.0[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.0[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        send(self.raw(), &m.0, MsgFlags::empty())?;
        let mut buf = vec![0u8; 32 * 1024];
        let mut answer = Vec::new();
        loop {
            let n = recv(self.raw(), &mut buf, MsgFlags::empty())?;
            let mut off = 0;
            while off + 16 <= n {
                let field =
                    |o: usize| u32::from_ne_bytes(buf[off + o..off + o + 4].try_into().unwrap());
                let mlen = field(0) as usize;
                let mty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if mlen < 16 || off + mlen > n {
                    return Err(io::Error::other("a malformed rtnetlink answer"));
                }
                if field(8) == self.seq {
                    if mty == NLMSG_ERROR {
                        let code = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap());
                        return if code == 0 {
                            Ok(answer)
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    if answer.is_empty() {
                        answer = buf[off + 16..off + mlen].to_vec();
                    }
                }
                off += mlen.next_multiple_of(4);
            }
        }
    }

    /// The index of link `name`.
    pub fn index(&mut self, name: &str) -> io::Result<i32> {
        let a = self.request(
            RTM_GETLINK,
            0,
            Msg::new().ifinfo(0, 0, 0).name(IFLA_IFNAME, name),
        )?;
        a.get(4..8)
            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
            .ok_or_else(|| io::Error::other(format!("no index in the answer for {name}")))
    }

    /// Set link `index` up.
    pub fn up(&mut self, index: i32) -> io::Result<()> {
        self.request(RTM_NEWLINK, 0, Msg::new().ifinfo(index, IFF_UP, IFF_UP))
            .map(drop)
    }

    /// Create the veth pair `host` (up, enslaved to bridge `master`) and `peer`, created in the
    /// network namespace `netns` (an open nsfs file).
    pub fn add_veth(
        &mut self,
        host: &str,
        master: i32,
        peer: &str,
        netns: RawFd,
    ) -> io::Result<()> {
        let m = Msg::new()
            .ifinfo(0, IFF_UP, IFF_UP)
            .name(IFLA_IFNAME, host)
            .attr(IFLA_MASTER, &(master as u32).to_ne_bytes())
            .nest(IFLA_LINKINFO, |m| {
                m.name(IFLA_INFO_KIND, "veth").nest(IFLA_INFO_DATA, |m| {
                    m.nest(VETH_INFO_PEER, |m| {
                        m.ifinfo(0, 0, 0)
                            .name(IFLA_IFNAME, peer)
                            .attr(IFLA_NET_NS_FD, &(netns as u32).to_ne_bytes())
                    })
                })
            });
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, m)
            .map(drop)
    }

    /// Delete link `name`.
    pub fn delete(&mut self, name: &str) -> io::Result<()> {
        self.request(
            RTM_DELLINK,
            0,
            Msg::new().ifinfo(0, 0, 0).name(IFLA_IFNAME, name),
        )
        .map(drop)
    }

    /// Add `ip/prefix` to link `index`.
    pub fn add_addr(&mut self, index: i32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut h = [0u8; 8];
        h[0] = AF_INET;
        h[1] = prefix;
        h[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
        let m = Msg::new()
            .bytes(&h)
            .attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets());
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, m)
            .map(drop)
    }

    /// Add the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
        let mut h = [0u8; 12];
        h[0] = AF_INET;
        h[4] = RT_TABLE_MAIN;
        h[5] = RTPROT_BOOT;
        h[7] = RTN_UNICAST;
        let m = Msg::new().bytes(&h).attr(RTA_GATEWAY, &gateway.octets());
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, m)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length_and_stay_aligned() {
        let m = Msg::new()
            .name(IFLA_IFNAME, "ab")
            .nest(IFLA_LINKINFO, |m| m.name(IFLA_INFO_KIND, "veth"));
        // "ab\0" padded to 4: 4 + 4 bytes; the nest: 4 + ("veth\0" = 4 + 5, padded to 12)
        assert_eq!(m.0.len(), 16 + 8 + 4 + 12);
        assert_eq!(u16::from_ne_bytes([m.0[24], m.0[25]]), 16);
        assert_eq!(
            u16::from_ne_bytes([m.0[26], m.0[27]]),
            IFLA_LINKINFO | NLA_F_NESTED
        );
    }
}
