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
//!
//! Changes go through `iptables-restore --noflush`: one process and one kernel transaction for
//! any number of rules (an `iptables` process per rule cost ~5-10 ms each, and a container
//! create needed a dozen), and all or nothing, so a crash never leaves half a change.

use std::net::Ipv4Addr;

use super::NetError;
use super::addr::{PortSpec, Subnet};
use super::cmd::{iptables, run};

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

    /// Remove the chains whatever they hold (their root is gone): one read, one transaction.
    pub fn flush_and_remove(&self) -> Result<(), NetError> {
        let snap = self.snapshot()?;
        self.restore(&self.teardown_script(&snap))
    }

    /// Create what is missing of the chains, the jumps into them and the `post` rules, in one
    /// transaction; nothing runs when `snap` shows it all there (idempotent: what a crash
    /// left half done is finished by the next call).
    pub fn ensure(&self, snap: &NatSnapshot, post: &[Vec<String>]) -> Result<(), NetError> {
        self.restore(&self.setup_script(snap, post))
    }

    /// The `iptables-restore --noflush` lines [`Chains::ensure`] runs (empty: nothing to do).
    pub fn setup_script(&self, snap: &NatSnapshot, post: &[Vec<String>]) -> String {
        let mut s = String::new();
        for chain in [&self.dnat, &self.post] {
            if !snap.chains.contains(chain) {
                s.push_str(&format!(":{chain} - [0:0]\n"));
            }
        }
        for (from, rule) in self.jumps() {
            if !snap.jumps.iter().any(|(f, r)| f == from && *r == rule) {
                s.push_str(&format!("-I {from} {}\n", rule.join(" ")));
            }
        }
        for rule in post {
            if !snap.post.contains(rule) {
                s.push_str(&format!("-A {} {}\n", self.post, rule.join(" ")));
            }
        }
        s
    }

    /// The lines that remove every jump into the chains, then the chains and their rules.
    pub fn teardown_script(&self, snap: &NatSnapshot) -> String {
        let mut s = String::new();
        for (from, rule) in &snap.jumps {
            s.push_str(&format!("-D {from} {}\n", rule.join(" ")));
        }
        for op in ["-F", "-X"] {
            for chain in [&self.dnat, &self.post] {
                if snap.chains.contains(chain) {
                    s.push_str(&format!("{op} {chain}\n"));
                }
            }
        }
        s
    }

    /// Run `lines` (commands on the nat table) as one transaction; nothing when empty.
    pub fn restore(&self, lines: &str) -> Result<(), NetError> {
        if lines.is_empty() {
            return Ok(());
        }
        let input = format!("*nat\n{lines}COMMIT\n");
        run("iptables-restore", &["-w", "--noflush"], Some(&input)).map(drop)
    }

    /// Remove the jumps and the chains when they hold no rule (no network bridged, no port
    /// published): the kernel's word, not the records' (which a deleted root could make wrong).
    pub fn remove_if_unused(&self) -> Result<(), NetError> {
        let snap = self.snapshot()?;
        if snap.dnat.is_empty() && snap.post.is_empty() {
            self.restore(&self.teardown_script(&snap))?;
        }
        Ok(())
    }

    /// The rules (without `-A CHAIN`) a network needs while its bridge is up: its containers
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

    /// Append `rules` to `chain`, in one transaction.
    pub fn add_all(&self, chain: &str, rules: &[Vec<String>]) -> Result<(), NetError> {
        let lines: String = rules
            .iter()
            .map(|r| format!("-A {chain} {}\n", r.join(" ")))
            .collect();
        self.restore(&lines)
    }

    /// Delete `rules` from `chain`; ones already gone are fine. One transaction when all are
    /// there (the usual case), one command per rule otherwise.
    pub fn delete_all(&self, chain: &str, rules: &[Vec<String>]) {
        let lines: String = rules
            .iter()
            .map(|r| format!("-D {chain} {}\n", r.join(" ")))
            .collect();
        if self.restore(&lines).is_err() {
            for r in rules {
                let mut a = vec!["-D", chain];
                a.extend(r.iter().map(String::as_str));
                let _ = iptables("nat", &a);
            }
        }
    }

    /// This root's part of the whole nat table, read with one `iptables-save`.
    pub fn snapshot(&self) -> Result<NatSnapshot, NetError> {
        Ok(self.snapshot_of(&run("iptables-save", &["-t", "nat"], None)?))
    }

    /// [`Chains::snapshot`] from `iptables-save -t nat` (or `iptables -t nat -S`) output.
    pub fn snapshot_of(&self, out: &str) -> NatSnapshot {
        let ours = |c: &str| c == self.dnat || c == self.post;
        let mut snap = NatSnapshot::default();
        for l in out.lines() {
            let w: Vec<String> = l
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_owned())
                .collect();
            let declared = match w.first().map(String::as_str) {
                Some("-N") => w.get(1).map(String::as_str),
                Some(c) => c.strip_prefix(':'),
                None => None,
            };
            if let Some(c) = declared.filter(|c| ours(c)) {
                snap.chains.push(c.to_owned());
            }
            if w.len() > 2 && w[0] == "-A" {
                if w[1] == self.dnat {
                    snap.dnat.push(w[2..].to_vec());
                } else if w[1] == self.post {
                    snap.post.push(w[2..].to_vec());
                } else if w[2..].windows(2).any(|p| p[0] == "-j" && ours(&p[1])) {
                    snap.jumps.push((w[1].clone(), w[2..].to_vec()));
                }
            }
        }
        snap
    }
}

/// What [`Chains::snapshot`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatSnapshot {
    /// Which of the root's chains exist.
    pub chains: Vec<String>,
    /// Rules of other (built-in) chains that jump into ours: (chain, rule).
    pub jumps: Vec<(String, Vec<String>)>,
    /// The rules of the DNAT chain, without `-A CHAIN`, quotes removed.
    pub dnat: Vec<Vec<String>>,
    /// The rules of the POST chain.
    pub post: Vec<Vec<String>>,
}

impl NatSnapshot {
    /// Anything of the root is in the kernel.
    pub fn exists(&self) -> bool {
        !self.chains.is_empty() || !self.jumps.is_empty()
    }
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

    const SAVED: &str = "# Generated by iptables-nft-save v1.8.9\n\
*nat\n\
:PREROUTING ACCEPT [0:0]\n\
:BERTH-abcd - [0:0]\n\
:BERTH-ffff - [0:0]\n\
-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment berth:abcd -j BERTH-abcd\n\
-A BERTH-abcd -p tcp --dport 8080 -m comment --comment \"c:0123\" -j DNAT --to-destination 10.0.0.2:80\n\
-A BERTH-ffff -p tcp --dport 1 -j DNAT --to-destination 10.1.0.2:1\n\
COMMIT\n";

    #[test]
    fn snapshot_reads_this_roots_chains_from_the_whole_table() {
        let c = Chains::new("abcd");
        let s = c.snapshot_of(SAVED);
        assert_eq!(s.chains, ["BERTH-abcd"]);
        assert_eq!(s.jumps.len(), 1);
        assert_eq!(s.jumps[0].0, "PREROUTING");
        assert_eq!(s.dnat.len(), 1);
        assert_eq!(container_of(&s.dnat[0]), Some("0123"));
        assert!(s.post.is_empty() && s.exists());

        // `iptables -S` spelling of the same
        let s2 = c.snapshot_of(
            "-N BERTH-abcd\n-A BERTH-abcd -p tcp --dport 8080 -m comment --comment \"c:0123\" -j DNAT --to-destination 10.0.0.2:80\n",
        );
        assert_eq!((s2.chains, s2.dnat), (s.chains, s.dnat));

        let idle = c.snapshot_of("-P PREROUTING ACCEPT\n-N BERTH-ffff\n-A OUTPUT -j BERTH-ffff\n");
        assert_eq!(idle, NatSnapshot::default());
        assert!(!idle.exists());
    }

    #[test]
    fn setup_adds_only_what_is_missing_and_teardown_removes_all_of_it() {
        let c = Chains::new("abcd");
        let post = c.network_rules(&"10.88.0.0/16".parse().unwrap(), "br-x");
        let s = c.snapshot_of(SAVED);
        let script = c.setup_script(&s, &post);
        assert!(!script.contains(":BERTH-abcd "), "{script}");
        assert!(script.contains(":BERTH-abcd-POST - [0:0]\n"), "{script}");
        assert!(!script.contains("-I PREROUTING"), "{script}");
        assert!(script.contains("-I OUTPUT "), "{script}");
        assert!(script.contains("-I POSTROUTING "), "{script}");
        assert_eq!(script.matches("-A BERTH-abcd-POST ").count(), 2, "{script}");

        // once all of it is there (as iptables-save prints it back), nothing is left to do
        let mut all = String::from(SAVED);
        all.push_str(":BERTH-abcd-POST - [0:0]\n");
        for l in script.lines().filter(|l| !l.starts_with(':')) {
            all.push_str(&l.replacen("-I ", "-A ", 1).replace("n:br-x", "\"n:br-x\""));
            all.push('\n');
        }
        let full = c.snapshot_of(&all);
        assert_eq!(c.setup_script(&full, &post), "");

        let down = c.teardown_script(&full);
        assert_eq!(down.matches("-D ").count(), 3, "{down}");
        assert!(down.contains("-F BERTH-abcd\n") && down.contains("-X BERTH-abcd-POST\n"));
        assert!(!down.contains("ffff"), "{down}");
        let flush = down.find("-F ").unwrap();
        assert!(down.rfind("-D ").unwrap() < flush && flush < down.find("-X ").unwrap());
    }
}
