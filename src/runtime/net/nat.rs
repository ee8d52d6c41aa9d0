//! Published ports and masquerading, as kernel NAT rules (nf_tables through `iptables`).
//!
//! Why kernel NAT and not a userspace proxy: a published port must keep working while no
//! berth process is around (the engine is a console that comes and goes, and a container's
//! monitor belongs to the runtime, which knows nothing of networks). Rules in the kernel need
//! no process to stay alive, cost no copy per packet, and keep the client's source address for
//! traffic from other hosts. What they need in exchange, and what we do:
//! - each rule names the container it belongs to (`-m comment c:ID`) in chains named after the
//!   state root (`BERTH-<tag>`), so a sweep finds and removes the rules of containers that are
//!   gone, after any crash, without touching another root's or anyone else's rules;
//! - connections to 127.0.0.1:PORT from the host itself are DNAT'ed in OUTPUT; the kernel only
//!   routes a loopback-sourced packet out of an interface with `route_localnet=1`, which we set
//!   on berth's bridges only (never globally), and masquerade such packets so replies come back.

use std::net::Ipv4Addr;

use super::NetError;
use super::addr::{PortSpec, Subnet};
use super::cmd::iptables;

/// The per-root NAT chains.
#[derive(Debug, Clone)]
pub struct Chains {
    /// DNAT rules of published ports.
    pub dnat: String,
    /// Masquerade rules of active networks.
    pub post: String,
    tag: String,
}

impl Chains {
    pub fn new(tag: &str) -> Self {
        Self {
            dnat: format!("BERTH-{tag}"),
            post: format!("BERTH-{tag}-POST"),
            tag: tag.to_owned(),
        }
    }

    fn jumps(&self) -> [(&'static str, Vec<String>); 3] {
        let c = format!("berth:{}", self.tag);
        let local = |chain: &str| {
            [
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                "-m",
                "comment",
                "--comment",
                &c,
                "-j",
                chain,
            ]
            .map(str::to_owned)
            .to_vec()
        };
        [
            ("PREROUTING", local(&self.dnat)),
            ("OUTPUT", local(&self.dnat)),
            (
                "POSTROUTING",
                ["-m", "comment", "--comment", &c, "-j", &self.post]
                    .map(str::to_owned)
                    .to_vec(),
            ),
        ]
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Remove the chains whatever they hold (their root is gone).
    pub fn flush_and_remove(&self) -> Result<(), NetError> {
        for chain in [&self.dnat, &self.post] {
            if iptables("nat", &["-S", chain]).is_ok() {
                iptables("nat", &["-F", chain])?;
            }
        }
        self.remove()
    }

    /// Create the chains and the jumps into them (idempotent).
    pub fn ensure(&self) -> Result<(), NetError> {
        for chain in [&self.dnat, &self.post] {
            if iptables("nat", &["-S", chain]).is_err() {
                iptables("nat", &["-N", chain])?;
            }
        }
        for (from, rule) in self.jumps() {
            let mut check = vec!["-C", from];
            check.extend(rule.iter().map(String::as_str));
            if iptables("nat", &check).is_err() {
                let mut add = vec!["-I", from];
                add.extend(rule.iter().map(String::as_str));
                iptables("nat", &add)?;
            }
        }
        Ok(())
    }

    /// Remove the jumps and the chains (when the root has no active network any more).
    pub fn remove(&self) -> Result<(), NetError> {
        for (from, rule) in self.jumps() {
            let mut del = vec!["-D", from];
            del.extend(rule.iter().map(String::as_str));
            while iptables("nat", &del).is_ok() {}
        }
        for chain in [&self.dnat, &self.post] {
            if iptables("nat", &["-S", chain]).is_ok() {
                iptables("nat", &["-F", chain])?;
                iptables("nat", &["-X", chain])?;
            }
        }
        Ok(())
    }

    /// The rules (without `-A CHAIN`) a network needs while it has endpoints: its containers
    /// reach other networks masqueraded, and host-local sources (127.0.0.1) reaching a
    /// container are masqueraded so the reply comes back.
    pub fn network_rules(&self, subnet: &Subnet, bridge: &str) -> Vec<Vec<String>> {
        let c = format!("n:{bridge}");
        let s = subnet.to_string();
        vec![
            [
                "-s",
                &s,
                "!",
                "-o",
                bridge,
                "-m",
                "comment",
                "--comment",
                &c,
                "-j",
                "MASQUERADE",
            ]
            .map(str::to_owned)
            .to_vec(),
            [
                "-o",
                bridge,
                "-m",
                "addrtype",
                "--src-type",
                "LOCAL",
                "-m",
                "comment",
                "--comment",
                &c,
                "-j",
                "MASQUERADE",
            ]
            .map(str::to_owned)
            .to_vec(),
        ]
    }

    /// The DNAT rule of one published port.
    pub fn port_rule(&self, container: &str, p: &PortSpec, ip: Ipv4Addr) -> Vec<String> {
        let mut r: Vec<String> = Vec::new();
        if let Some(h) = p.host_ip {
            r.extend(["-d".into(), h.to_string()]);
        }
        r.extend(
            [
                "-p",
                p.proto.as_str(),
                "--dport",
                &p.host_port.to_string(),
                "-m",
                "comment",
                "--comment",
                &comment_of(container),
                "-j",
                "DNAT",
                "--to-destination",
                &format!("{ip}:{}", p.container_port),
            ]
            .map(str::to_owned),
        );
        r
    }

    pub fn add(&self, chain: &str, rule: &[String]) -> Result<(), NetError> {
        let mut a = vec!["-A", chain];
        a.extend(rule.iter().map(String::as_str));
        iptables("nat", &a).map(drop)
    }

    /// Delete a rule; one that is already gone is fine.
    pub fn delete(&self, chain: &str, rule: &[String]) {
        let mut a = vec!["-D", chain];
        a.extend(rule.iter().map(String::as_str));
        let _ = iptables("nat", &a);
    }

    /// Every rule of `chain` as printed by `iptables -S`, split into words (quotes removed),
    /// without the leading `-A CHAIN`.
    pub fn rules(&self, chain: &str) -> Vec<Vec<String>> {
        let Ok(out) = iptables("nat", &["-S", chain]) else {
            return Vec::new();
        };
        parse_rules(&out, chain)
    }

    /// This root's part of the whole nat table, read with one `iptables -S` (instead of one
    /// call per chain and per jump: a sweep runs at every container create).
    pub fn snapshot(&self) -> Result<NatSnapshot, NetError> {
        Ok(self.snapshot_of(&iptables("nat", &["-S"])?))
    }

    /// [`Chains::snapshot`] from `iptables -t nat -S` output.
    pub fn snapshot_of(&self, out: &str) -> NatSnapshot {
        let ours = |c: &str| c == self.dnat || c == self.post;
        let mut chains_exist = false;
        let mut jumps_exist = false;
        for l in out.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["-N", c, ..] if ours(c) => chains_exist = true,
                ["-A", c, rest @ ..] if !ours(c) => {
                    jumps_exist |= rest.windows(2).any(|p| p[0] == "-j" && ours(p[1]));
                }
                _ => {}
            }
        }
        NatSnapshot {
            chains_exist,
            jumps_exist,
            dnat: parse_rules(out, &self.dnat),
            post: parse_rules(out, &self.post),
        }
    }
}

/// What [`Chains::snapshot`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatSnapshot {
    /// Either of the root's chains exists.
    pub chains_exist: bool,
    /// A built-in chain jumps into one of them.
    pub jumps_exist: bool,
    /// The rules of the DNAT chain, as [`Chains::rules`] gives them.
    pub dnat: Vec<Vec<String>>,
    /// The rules of the POST chain.
    pub post: Vec<Vec<String>>,
}

/// The `-A CHAIN …` lines of `chain` in `iptables -S` output, split into words (quotes
/// removed), without the leading `-A CHAIN`.
fn parse_rules(out: &str, chain: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter_map(|l| {
            let words: Vec<String> = l
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_owned())
                .collect();
            (words.len() > 2 && words[0] == "-A" && words[1] == chain).then(|| words[2..].to_vec())
        })
        .collect()
}

/// The comment that ties a DNAT rule to its container.
pub fn comment_of(container: &str) -> String {
    format!("c:{}", &container[..container.len().min(24)])
}

/// The container (id prefix) a rule belongs to, from its comment.
pub fn container_of(rule: &[String]) -> Option<&str> {
    let i = rule.iter().position(|w| w == "--comment")?;
    rule.get(i + 1)?.strip_prefix("c:")
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    #[test]
    fn snapshot_reads_this_roots_chains_from_the_whole_table() {
        let c = Chains::new("abcd");
        let out = "-P PREROUTING ACCEPT\n\
-N BERTH-abcd\n\
-N BERTH-abcd-POST\n\
-N BERTH-ffff\n\
-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment berth:abcd -j BERTH-abcd\n\
-A BERTH-abcd -p tcp --dport 8080 -m comment --comment \"c:0123\" -j DNAT --to-destination 10.0.0.2:80\n\
-A BERTH-ffff -p tcp --dport 1 -j DNAT --to-destination 10.1.0.2:1\n";
        let s = c.snapshot_of(out);
        assert!(s.chains_exist && s.jumps_exist);
        assert_eq!(s.dnat.len(), 1);
        assert_eq!(container_of(&s.dnat[0]), Some("0123"));
        assert!(s.post.is_empty());

        let idle = c.snapshot_of("-P PREROUTING ACCEPT\n-N BERTH-ffff\n-A OUTPUT -j BERTH-ffff\n");
        assert_eq!(idle, NatSnapshot::default());
    }
}
