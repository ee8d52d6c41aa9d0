//! Container networking: bridge networks with IPAM, a network namespace and veth per container,
//! published ports, and the container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
//!
//! The API layer prepares a container's network here before the runtime creates it, and passes
//! the namespace ([`Attachment::netns`], joined with `NetworkMode::Join`) and the files (as
//! binds); it tears it down after the container is removed, and [`Net::sweep`] removes what a
//! killed engine left behind. A network's bridge and its NAT rules are set up with its first
//! container and then stay, like Docker's `docker0`, until the network is removed or
//! [`Net::teardown`] is called (or, for a state root that was deleted, until any engine's next
//! sweep): building them costs a dozen commands and ~100 ms, which every `run --rm` paid when
//! they went with the last container. Per container there is only its namespace (made
//! in-process), its veth pair and its published ports' rules, all gone with it.
//!
//! On disk (`<root>/net/`): `networks/NAME.json` (the network and its address allocations, so
//! addresses survive restarts), `containers/ID/` (`ns`, the namespace bind mount; `hosts`,
//! `hostname`, `resolv.conf`; `attachment.json`), `lock`. Subnets are handed out under a
//! host-wide lock from a registry in `/run/berth/`, so engines on different roots never pick
//! overlapping networks.
//!
//! - [`addr`]: subnets and `-p` specs; [`nat`]: published ports as kernel NAT rules (and why);
//!   [`cmd`]: the `ip`/`iptables` tools (and why); [`rtnl`]: the per-container link, address
//!   and route requests, in-process (and why).

pub mod addr;
pub mod cmd;
pub mod nat;
pub mod rtnl;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use addr::{PortSpec, Proto, Subnet};

/// The name of the default network.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Set to a subnet (`10.88.0.0/16`) to fix the default network's addresses.
pub const SUBNET_ENV: &str = "BERTH_BRIDGE_SUBNET";
/// Where subnets are registered host-wide (a tmpfs: it starts empty at boot, as do bridges).
const REGISTRY_DIR: &str = "/run/berth";

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{cmd}: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        source: std::io::Error,
    },
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no such network: {0}")]
    NoSuchNetwork(String),
    #[error("network {0} already exists")]
    Exists(String),
    #[error("network {name} has active endpoints ({containers})")]
    InUse { name: String, containers: String },
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("no free private subnet for network {0} (give one with --subnet)")]
    NoSubnet(String),
    #[error("subnet {subnet} overlaps {other}")]
    Overlap { subnet: Subnet, other: String },
    #[error("no free address left in network {0}")]
    Exhausted(String),
    #[error("bind for {0} failed: port is already allocated")]
    PortInUse(String),
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
}

type Result<T> = std::result::Result<T, NetError>;

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetError {
    let path = path.to_owned();
    move |source| NetError::Io {
        context,
        path,
        source,
    }
}

/// One container's place in a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    /// Names it answers to on this network: the container's name, its hostname, aliases.
    pub names: Vec<String>,
}

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// The bridge device (`br-<id12>`), present while the network has endpoints.
    pub bridge: String,
    /// Unix seconds.
    pub created: i64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Containers by id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl Network {
    /// Containers on user-defined networks find each other by name (not on the default one,
    /// as in Docker).
    pub fn resolves_names(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// What a container needs networked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttachRequest {
    pub container: String,
    pub name: String,
    pub hostname: String,
    /// Network names; the first holds the default route. Empty: the default network.
    pub networks: Vec<String>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortSpec>,
}

/// One interface of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub network: String,
    pub network_id: String,
    /// Inside the container: eth0, eth1…
    pub ifname: String,
    /// The host end, enslaved to the network's bridge.
    pub veth: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// A container's prepared network: everything to tear down again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub container: String,
    pub name: String,
    pub hostname: String,
    pub aliases: Vec<String>,
    /// The network namespace (an nsfs bind mount) to join.
    pub netns: PathBuf,
    pub hosts: PathBuf,
    pub hostname_file: PathBuf,
    pub resolv: PathBuf,
    pub interfaces: Vec<Interface>,
    /// Published ports, host ports resolved.
    pub ports: Vec<PortSpec>,
    /// The DNAT rules installed for them.
    pub rules: Vec<Vec<String>>,
}

/// The networking state of one state root.
#[derive(Debug, Clone)]
pub struct Net {
    dir: PathBuf,
    root: PathBuf,
    chains: nat::Chains,
}

impl Net {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("net");
        for d in [dir.join("networks"), dir.join("containers")] {
            std::fs::create_dir_all(&d).map_err(io("creating", &d))?;
        }
        let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
        let tag = hex::encode(&sha2::Sha256::digest(abs.as_os_str().as_encoded_bytes())[..4]);
        Ok(Self {
            dir,
            root: abs,
            chains: nat::Chains::new(&tag),
        })
    }

    /// The NAT chains of this root (their names are stable per root path).
    pub fn chains(&self) -> &nat::Chains {
        &self.chains
    }

    fn lock(&self) -> Result<Flock<File>> {
        let p = self.dir.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io("opening", &p))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| NetError::Io {
            context: "locking",
            path: p,
            source: e.into(),
        })
    }

    fn network_path(&self, name: &str) -> PathBuf {
        self.dir.join("networks").join(format!("{name}.json"))
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join("containers").join(id)
    }

    fn save_network(&self, n: &Network) -> Result<()> {
        let p = self.network_path(&n.name);
        let data = serde_json::to_vec_pretty(n).expect("a network serialises");
        crate::runtime::state::write_atomic(&p, &data).map_err(|e| NetError::Io {
            context: "writing",
            path: p,
            source: std::io::Error::other(e.to_string()),
        })
    }

    fn load_network(&self, name: &str) -> Result<Network> {
        let p = self.network_path(name);
        let data = std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NetError::NoSuchNetwork(name.to_owned()),
            _ => NetError::Io {
                context: "reading",
                path: p.clone(),
                source: e,
            },
        })?;
        serde_json::from_slice(&data).map_err(|e| NetError::Io {
            context: "parsing",
            path: p,
            source: std::io::Error::other(e),
        })
    }

    fn all_networks(&self) -> Result<Vec<Network>> {
        let d = self.dir.join("networks");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&d).map_err(io("listing", &d))? {
            let e = e.map_err(io("listing", &d))?;
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(name) = n.strip_suffix(".json")
                && !n.starts_with('.')
            {
                out.push(self.load_network(name)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every network, the default one included (created on first use).
    pub fn list(&self) -> Result<Vec<Network>> {
        let _l = self.lock()?;
        self.ensure_default()?;
        self.all_networks()
    }

    /// A network by name, full id or unique id prefix.
    pub fn get(&self, what: &str) -> Result<Network> {
        let _l = self.lock()?;
        self.ensure_default()?;
        self.find(what)
    }

    fn find(&self, what: &str) -> Result<Network> {
        if let Ok(n) = self.load_network(what) {
            return Ok(n);
        }
        let all = self.all_networks()?;
        let m: Vec<&Network> = all
            .iter()
            .filter(|n| !what.is_empty() && n.id.starts_with(what))
            .collect();
        match m.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(NetError::NoSuchNetwork(what.to_owned())),
        }
    }

    fn ensure_default(&self) -> Result<()> {
        if self.network_path(DEFAULT_NETWORK).exists() {
            return Ok(());
        }
        let subnet = match std::env::var(SUBNET_ENV) {
            Ok(s) if !s.is_empty() => Some(s.parse()?),
            _ => None,
        };
        self.create_locked(DEFAULT_NETWORK, subnet, BTreeMap::new())
            .map(drop)
    }

    /// Create a user-defined network; `subnet` is picked from the private pool when `None`.
    pub fn create(
        &self,
        name: &str,
        subnet: Option<Subnet>,
        labels: BTreeMap<String, String>,
    ) -> Result<Network> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid || matches!(name, "host" | "none") {
            return Err(NetError::Invalid {
                what: "network name",
                value: name.to_owned(),
                why: "use [a-zA-Z0-9][a-zA-Z0-9_.-]*; host and none are reserved".into(),
            });
        }
        let _l = self.lock()?;
        self.ensure_default()?;
        self.create_locked(name, subnet, labels)
    }

    fn create_locked(
        &self,
        name: &str,
        subnet: Option<Subnet>,
        labels: BTreeMap<String, String>,
    ) -> Result<Network> {
        if self.network_path(name).exists() {
            return Err(NetError::Exists(name.to_owned()));
        }
        if let Some(s) = subnet
            && !s.is_private()
        {
            return Err(NetError::Invalid {
                what: "subnet",
                value: s.to_string(),
                why: "berth networks must be private (10/8, 172.16/12, 192.168/16)".into(),
            });
        }
        let id = {
            let a: u128 = rand::random();
            let b: u128 = rand::random();
            format!("{a:032x}{b:032x}")
        };
        let registry = Registry::lock()?;
        let mut entries = registry.reap()?;
        let subnet = match subnet {
            Some(s) => {
                if let Some(other) = conflict(&s, &entries) {
                    return Err(NetError::Overlap { subnet: s, other });
                }
                s
            }
            None => pick_subnet(&entries).ok_or_else(|| NetError::NoSubnet(name.to_owned()))?,
        };
        let net = Network {
            bridge: format!("br-{}", &id[..12]),
            id,
            name: name.to_owned(),
            gateway: subnet.gateway(),
            subnet,
            created: now(),
            labels,
            endpoints: BTreeMap::new(),
        };
        self.save_network(&net)?;
        entries.push(RegistryEntry {
            subnet,
            root: self.root.clone(),
            network: name.to_owned(),
            bridge: net.bridge.clone(),
            tag: self.chains.tag().to_owned(),
        });
        registry.save(&entries)?;
        Ok(net)
    }

    /// Remove a network without endpoints. The default network is always there.
    pub fn remove(&self, what: &str) -> Result<()> {
        let _l = self.lock()?;
        let n = self.find(what)?;
        if n.name == DEFAULT_NETWORK {
            return Err(NetError::Invalid {
                what: "network",
                value: n.name,
                why: "the default network cannot be removed".into(),
            });
        }
        if !n.endpoints.is_empty() {
            return Err(NetError::InUse {
                containers: n
                    .endpoints
                    .values()
                    .filter_map(|e| e.names.first().cloned())
                    .collect::<Vec<_>>()
                    .join(", "),
                name: n.name,
            });
        }
        self.bridge_down(&n);
        let p = self.network_path(&n.name);
        std::fs::remove_file(&p).map_err(io("removing", &p))?;
        // The registry entry is stale now; it is reaped the next time anyone allocates or sweeps.
        Ok(())
    }

    /// The attachment of a container, when it has one.
    pub fn attachment(&self, container: &str) -> Option<Attachment> {
        let p = self.container_dir(container).join("attachment.json");
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    }

    /// Atomic (a killed engine leaves the old record or the new one) but not fsynced: what it
    /// records (a namespace mount, veths, NAT rules) does not survive a power loss either, and
    /// its files (hosts, resolv.conf) are not fsynced. The network records (address
    /// allocations, which do outlive a reboot) are.
    fn save_attachment(&self, a: &Attachment) -> Result<()> {
        let p = self.container_dir(&a.container).join("attachment.json");
        let data = serde_json::to_vec_pretty(a).expect("an attachment serialises");
        crate::runtime::state::write_atomic_volatile(&p, &data).map_err(|e| NetError::Io {
            context: "writing",
            path: p,
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Create the container's network namespace, connect it to its networks, publish its ports
    /// and write its files. On error, whatever was done is undone.
    pub fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        let _l = self.lock()?;
        self.ensure_default()?;
        let r = self.attach_locked(req);
        if r.is_err() {
            let _ = self.detach_locked(&req.container, Links::Delete);
        }
        r
    }

    fn attach_locked(&self, req: &AttachRequest) -> Result<Attachment> {
        let dir = self.container_dir(&req.container);
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let netns = dir.join("ns");
        let mut a = Attachment {
            container: req.container.clone(),
            name: req.name.clone(),
            hostname: req.hostname.clone(),
            aliases: req.aliases.clone(),
            hosts: dir.join("hosts"),
            hostname_file: dir.join("hostname"),
            resolv: dir.join("resolv.conf"),
            netns: netns.clone(),
            interfaces: Vec::new(),
            ports: Vec::new(),
            rules: Vec::new(),
        };
        // Recorded first, so a failure part-way is torn down by detach.
        self.save_attachment(&a)?;
        File::create(&netns).map_err(io("creating", &netns))?;
        cmd::new_netns(&netns)?;
        let networks = if req.networks.is_empty() {
            vec![DEFAULT_NETWORK.to_owned()]
        } else {
            req.networks.clone()
        };
        for n in &networks {
            self.connect_locked(&mut a, n)?;
        }
        self.publish(&mut a, &req.ports)?;
        std::fs::write(&a.hostname_file, format!("{}\n", a.hostname))
            .map_err(io("writing", &a.hostname_file))?;
        std::fs::write(&a.resolv, resolv_conf()).map_err(io("writing", &a.resolv))?;
        self.save_attachment(&a)?;
        self.refresh_hosts(&a)?;
        Ok(a)
    }

    /// Connect a prepared container to one more network (`network connect`).
    pub fn connect(&self, container: &str, network: &str) -> Result<Attachment> {
        let _l = self.lock()?;
        let mut a = self
            .attachment(container)
            .ok_or_else(|| NetError::NotConnected {
                container: container.to_owned(),
                network: network.to_owned(),
            })?;
        self.connect_locked(&mut a, network)?;
        self.save_attachment(&a)?;
        self.refresh_hosts(&a)?;
        Ok(a)
    }

    fn connect_locked(&self, a: &mut Attachment, network: &str) -> Result<()> {
        let mut net = self.find(network)?;
        if net.endpoints.contains_key(&a.container) {
            return Err(NetError::AlreadyConnected {
                container: a.name.clone(),
                network: net.name,
            });
        }
        let used: HashSet<Ipv4Addr> = net.endpoints.values().map(|e| e.ip).collect();
        let ip = (2..)
            .map_while(|n| net.subnet.host(n))
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| NetError::Exhausted(net.name.clone()))?;
        let index = (0..10)
            .find(|i| !a.interfaces.iter().any(|f| f.ifname == format!("eth{i}")))
            .ok_or_else(|| NetError::Exhausted(format!("{} (interfaces)", a.name)))?;
        let ifname = format!("eth{index}");
        let veth = format!("vb{}{index}", &a.container[..11.min(a.container.len())]);
        let mut names = vec![a.name.clone()];
        if a.hostname != a.name {
            names.push(a.hostname.clone());
        }
        names.extend(a.aliases.iter().cloned());
        net.endpoints.insert(
            a.container.clone(),
            Endpoint {
                ip,
                names: names.clone(),
            },
        );
        // The allocation is on disk before any device exists: a crash leaves a record the
        // sweep releases, never an address in use that IPAM does not know of.
        self.save_network(&net)?;
        let iface = Interface {
            network: net.name.clone(),
            network_id: net.id.clone(),
            ifname: ifname.clone(),
            veth: veth.clone(),
            ip,
            prefix: net.subnet.prefix,
            gateway: net.gateway,
        };
        a.interfaces.push(iface);
        self.save_attachment(a)?;
        self.bridge_up(&net)?;
        // One request: the pair, its inner end created in the namespace, its outer end
        // enslaved and up. Then, inside, its address and route (and loopback up).
        let nl = |what: String| move |source: std::io::Error| NetError::Netlink { what, source };
        let ns = File::open(&a.netns).map_err(io("opening", &a.netns))?;
        let mut rt = rtnl::Rtnl::open().map_err(nl("opening rtnetlink".into()))?;
        let master = rt
            .index(&net.bridge)
            .map_err(nl(format!("finding the bridge {}", net.bridge)))?;
        rt.add_veth(&veth, master, &ifname, ns.as_raw_fd())
            .map_err(nl(format!(
                "creating the veth pair {veth} on {}",
                net.bridge
            )))?;
        let gateway = net.gateway;
        cmd::in_netns(&a.netns, || {
            let mut rt = rtnl::Rtnl::open().map_err(nl("opening rtnetlink".into()))?;
            let i = rt.index(&ifname).map_err(nl(format!("finding {ifname}")))?;
            rt.add_addr(i, ip, net.subnet.prefix)
                .map_err(nl(format!("adding {ip}/{} to {ifname}", net.subnet.prefix)))?;
            rt.up(i).map_err(nl(format!("setting {ifname} up")))?;
            if index == 0 {
                let lo = rt.index("lo").map_err(nl("finding lo".into()))?;
                rt.up(lo).map_err(nl("setting lo up".into()))?;
                rt.add_default_route(gateway)
                    .map_err(nl(format!("adding the default route via {gateway}")))?;
            }
            Ok(())
        })
    }

    /// Disconnect a container from one network (`network disconnect`).
    pub fn disconnect(&self, container: &str, network: &str) -> Result<()> {
        let _l = self.lock()?;
        let net = self.find(network)?;
        let mut a = self
            .attachment(container)
            .filter(|a| a.interfaces.iter().any(|i| i.network_id == net.id))
            .ok_or_else(|| NetError::NotConnected {
                container: container.to_owned(),
                network: net.name.clone(),
            })?;
        let i = a
            .interfaces
            .iter()
            .position(|i| i.network_id == net.id)
            .expect("checked above");
        let iface = a.interfaces.remove(i);
        delete_links([iface.veth.as_str()]);
        self.release(&net.name, container)?;
        self.save_attachment(&a)?;
        self.refresh_hosts(&a)
    }

    fn release(&self, network: &str, container: &str) -> Result<()> {
        let Ok(mut net) = self.load_network(network) else {
            return Ok(());
        };
        if net.endpoints.remove(container).is_some() {
            self.save_network(&net)?;
        }
        // Peers on the network no longer see this container.
        if net.resolves_names() {
            for peer in net.endpoints.keys() {
                if let Some(p) = self.attachment(peer) {
                    let _ = self.write_hosts(&p);
                }
            }
        }
        Ok(())
    }

    fn publish(&self, a: &mut Attachment, ports: &[PortSpec]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let ip = a
            .interfaces
            .first()
            .map(|i| i.ip)
            .ok_or_else(|| NetError::Invalid {
                what: "port publishing",
                value: a.name.clone(),
                why: "the container has no network interface".into(),
            })?;
        let taken: Vec<PortSpec> = self.all_attachments().flat_map(|a| a.ports).collect();
        let mut rules = Vec::new();
        for p in ports {
            let mut p = p.clone();
            let clash = |q: &PortSpec| {
                q.proto == p.proto
                    && q.host_port == p.host_port
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            };
            if p.host_port == 0 {
                p.host_port = free_port(&p)?;
            } else if taken.iter().chain(a.ports.iter()).any(clash) || !port_free(&p) {
                return Err(NetError::PortInUse(format!(
                    "{}:{}",
                    p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    p.host_port
                )));
            }
            let rule = self.chains.port_rule(&a.container, &p, ip);
            a.rules.push(rule.clone());
            a.ports.push(p);
            rules.push(rule);
        }
        // Recorded before they exist (a crash leaves records the sweep acts on, never rules
        // nobody knows of), then added in one transaction. The chains are there with the
        // bridge; should anyone have flushed them since, they are set up again.
        self.save_attachment(a)?;
        if self.chains.add_all(&self.chains.dnat, &rules).is_err() {
            let snap = self.chains.snapshot()?;
            self.chains.ensure(&snap, &[])?;
            self.chains.add_all(&self.chains.dnat, &rules)?;
        }
        Ok(())
    }

    fn all_attachments(&self) -> impl Iterator<Item = Attachment> + '_ {
        std::fs::read_dir(self.dir.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.attachment(&e.file_name().to_string_lossy()))
    }

    /// Bring a network's bridge up (its first endpoint ever): NAT rules, device, address. A
    /// bridge that is up is one whose rules are in place (it goes up last), so the usual case
    /// costs one stat and no command.
    fn bridge_up(&self, net: &Network) -> Result<()> {
        if cmd::link_is_up(&net.bridge) {
            return Ok(());
        }
        let snap = self.chains.snapshot()?;
        self.chains
            .ensure(&snap, &self.chains.network_rules(&net.subnet, &net.bridge))?;
        let mut script = String::new();
        if !cmd::link_exists(&net.bridge) {
            script.push_str(&format!("link add {} type bridge\n", net.bridge));
        }
        script.push_str(&format!(
            "addr replace {}/{} dev {}\n",
            net.gateway, net.subnet.prefix, net.bridge
        ));
        cmd::ip_batch(&script)?;
        let p = PathBuf::from(format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            net.bridge
        ));
        std::fs::write(&p, "1").map_err(io("writing", &p))?;
        cmd::ip_batch(&format!("link set {} up\n", net.bridge))
    }

    /// Take a network's bridge down (the network is removed); the chains go with the last
    /// bridge.
    fn bridge_down(&self, net: &Network) {
        if let Ok(snap) = self.chains.snapshot() {
            let mine = self.chains.network_rules(&net.subnet, &net.bridge);
            let rules: Vec<Vec<String>> =
                mine.into_iter().filter(|r| snap.post.contains(r)).collect();
            self.chains.delete_all(&self.chains.post, &rules);
        }
        if cmd::link_exists(&net.bridge) {
            let _ = cmd::ip_batch(&format!("link del {}\n", net.bridge));
        }
        let _ = self.chains.remove_if_unused();
    }

    /// Remove this root's kernel state: every bridge of its networks and its NAT chains (what
    /// stays up between containers). For a state root about to be deleted; the next container
    /// sets it all up again. Refused while a container has a network attachment.
    pub fn teardown(&self) -> Result<()> {
        let _l = self.lock()?;
        let attached: Vec<String> = std::fs::read_dir(self.dir.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !attached.is_empty() {
            return Err(NetError::InUse {
                name: "the state root's networks".into(),
                containers: attached.join(", "),
            });
        }
        let script: String = self
            .all_networks()?
            .iter()
            .filter(|n| cmd::link_exists(&n.bridge))
            .map(|n| format!("link del {}\n", n.bridge))
            .collect();
        if !script.is_empty() {
            cmd::ip_batch(&script)?;
        }
        self.chains.flush_and_remove()
    }

    /// Regenerate the hosts files of a container and of its peers on name-resolving networks.
    fn refresh_hosts(&self, a: &Attachment) -> Result<()> {
        self.write_hosts(a)?;
        let mut done = HashSet::from([a.container.clone()]);
        for i in &a.interfaces {
            let Ok(net) = self.load_network(&i.network) else {
                continue;
            };
            if !net.resolves_names() {
                continue;
            }
            for peer in net.endpoints.keys() {
                if done.insert(peer.clone())
                    && let Some(p) = self.attachment(peer)
                {
                    self.write_hosts(&p)?;
                }
            }
        }
        Ok(())
    }

    /// Write a container's /etc/hosts in place (it is bind-mounted: the inode must stay).
    fn write_hosts(&self, a: &Attachment) -> Result<()> {
        let mut s = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        if let Some(i) = a.interfaces.first() {
            s.push_str(&format!("{}\t{}\n", i.ip, a.hostname));
        }
        for i in &a.interfaces {
            let Ok(net) = self.load_network(&i.network) else {
                continue;
            };
            if !net.resolves_names() {
                continue;
            }
            for (id, e) in &net.endpoints {
                if id != &a.container && !e.names.is_empty() {
                    s.push_str(&format!("{}\t{}\n", e.ip, e.names.join(" ")));
                }
            }
        }
        std::fs::write(&a.hosts, s).map_err(io("writing", &a.hosts))
    }

    /// Undo a container's attachment: ports, interfaces, addresses, namespace, files.
    pub fn detach(&self, container: &str) -> Result<()> {
        let _l = self.lock()?;
        self.detach_locked(container, Links::Delete)
    }

    fn detach_locked(&self, container: &str, links: Links) -> Result<()> {
        let dir = self.container_dir(container);
        let a = self.attachment(container);
        if let Some(a) = &a
            && !a.rules.is_empty()
        {
            self.chains.delete_all(&self.chains.dnat, &a.rules);
        }
        // Addresses are released whether or not the attachment record made it to disk; the
        // namespace goes even when the records cannot be read.
        let released = self.all_networks().and_then(|all| {
            all.iter()
                .filter(|n| n.endpoints.contains_key(container))
                .try_for_each(|n| self.release(&n.name, container))
        });
        let ns = dir.join("ns");
        if ns.exists() {
            // Not mounted (a crash before the namespace was made) is fine.
            let _ = nix::mount::umount2(&ns, nix::mount::MntFlags::MNT_DETACH);
        }
        // A veth pair goes with the namespace its inner end is in, but the kernel destroys a
        // namespace asynchronously: what is still there is deleted now, unless left to it.
        if links == Links::Delete {
            delete_links(
                a.iter()
                    .flat_map(|a| &a.interfaces)
                    .map(|i| i.veth.as_str())
                    .filter(|v| cmd::link_exists(v)),
            );
        }
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", &dir)(e)),
            _ => released,
        }
    }

    /// Tear down everything of containers not in `live` (what a killed engine left): their
    /// attachments, addresses and NAT rules; and what deleted state roots left in the kernel.
    /// Returns the containers cleaned up. Call it under the state root's change lock, so no container is
    /// between its attachment and its creation.
    pub fn sweep(&self, live: &HashSet<String>) -> Result<Vec<String>> {
        sweep_dead_roots();
        let _l = self.lock()?;
        let mut gone: Vec<String> = Vec::new();
        let d = self.dir.join("containers");
        for e in std::fs::read_dir(&d).map_err(io("listing", &d))?.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !live.contains(&id) {
                self.detach_locked(&id, Links::Delete)?;
                gone.push(id);
            }
        }
        for n in self.all_networks()? {
            for id in n.endpoints.keys() {
                if !live.contains(id) {
                    self.release(&n.name, id)?;
                    gone.push(id.clone());
                }
            }
        }
        // After a crash, the kernel's word too (not only the records'): published ports of
        // containers that are gone. Not read otherwise (an exec at every create).
        if !gone.is_empty()
            && let Ok(nat) = self.chains.snapshot()
        {
            let stale: Vec<Vec<String>> = nat
                .dnat
                .into_iter()
                .filter(|r| {
                    nat::container_of(r).is_some_and(|c| !live.iter().any(|l| l.starts_with(c)))
                })
                .collect();
            if !stale.is_empty() {
                self.chains.delete_all(&self.chains.dnat, &stale);
            }
        }
        gone.sort();
        gone.dedup();
        Ok(gone)
    }
}

/// Tear down a removed container's network if it has one (the monitor of an auto-removed
/// container calls this; no engine may be running). Errors are left for the next sweep.
///
/// Its veth is left to the kernel, which destroys it with the namespace once the mount is gone
/// (the container's processes are): deleting it here cost 35-60 ms with the net lock held, on
/// the path of the next `run`. Its name, made of the container's id, is not taken again.
pub fn detach_if_attached(root: &Path, container: &str) {
    if root.join("net/containers").join(container).exists()
        && let Ok(n) = Net::open(root)
        && let Ok(_l) = n.lock()
    {
        let _ = n.detach_locked(container, Links::LeaveToTheKernel);
    }
}

/// What a detach does with the container's host links.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    /// Delete what the kernel has not taken yet (`rm`: gone when it returns).
    Delete,
    /// The namespace's end takes them (an auto-removed container's monitor).
    LeaveToTheKernel,
}

/// Delete host links (veths); one already gone is fine.
fn delete_links<'a>(names: impl IntoIterator<Item = &'a str>) {
    let mut rt = None;
    for n in names {
        if rt.is_none() {
            rt = rtnl::Rtnl::open().ok();
        }
        if let Some(rt) = rt.as_mut() {
            let _ = rt.delete(n);
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The host's resolv.conf without loopback nameservers (unreachable from a container's own
/// namespace); Docker's public fallback when nothing is left.
fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let mut servers = 0;
    for l in host.lines() {
        let mut w = l.split_whitespace();
        if w.next() == Some("nameserver") {
            match w.next().and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
                Some(ip) if !ip.is_loopback() => servers += 1,
                _ => continue,
            }
        }
        out.push_str(l);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

fn port_free(p: &PortSpec) -> bool {
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    match p.proto {
        Proto::Tcp => std::net::TcpListener::bind((ip, p.host_port)).is_ok(),
        Proto::Udp => std::net::UdpSocket::bind((ip, p.host_port)).is_ok(),
    }
}

/// A port no host socket holds, from the kernel's ephemeral range.
fn free_port(p: &PortSpec) -> Result<u16> {
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let port = match p.proto {
        Proto::Tcp => std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()),
        Proto::Udp => std::net::UdpSocket::bind((ip, 0)).and_then(|l| l.local_addr()),
    };
    port.map(|a| a.port())
        .map_err(|e| NetError::PortInUse(format!("{ip}:0 ({e})")))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RegistryEntry {
    subnet: Subnet,
    root: PathBuf,
    network: String,
    #[serde(default)]
    bridge: String,
    #[serde(default)]
    tag: String,
}

impl RegistryEntry {
    fn alive(&self) -> bool {
        let f = self
            .root
            .join("net/networks")
            .join(format!("{}.json", self.network));
        std::fs::read(f)
            .ok()
            .and_then(|d| serde_json::from_slice::<Network>(&d).ok())
            .is_some_and(|n| n.subnet == self.subnet)
    }
}

/// Tear down what networks of deleted state roots left in the kernel (a root removed while
/// its containers' monitors were still tearing down): their bridges, their roots' NAT chains
/// once no network of the root is left, and namespace mounts under such roots.
fn sweep_dead_roots() {
    if let Ok(registry) = Registry::lock() {
        let _ = registry.reap();
    }
}

/// The host-wide subnet registry, locked.
struct Registry(#[allow(dead_code)] Flock<File>);

impl Registry {
    fn lock() -> Result<Self> {
        let d = Path::new(REGISTRY_DIR);
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
        let p = d.join("subnets.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io("opening", &p))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map(Registry)
            .map_err(|(_, e)| NetError::Io {
                context: "locking",
                path: p,
                source: e.into(),
            })
    }

    fn entries(&self) -> Vec<RegistryEntry> {
        let p = Path::new(REGISTRY_DIR).join("subnets.json");
        std::fs::read(&p)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    }

    /// The entries whose network still exists with that subnet. The others are dropped, and
    /// what they left in the kernel goes first (their bridges; their roots' chains and
    /// namespace mounts once no network of the root is left): bridges outlive containers, so
    /// an entry dropped as it was would leave its bridge with no one to remove it.
    fn reap(&self) -> Result<Vec<RegistryEntry>> {
        let (alive, dead): (Vec<_>, Vec<_>) = self.entries().into_iter().partition(|e| e.alive());
        if dead.is_empty() {
            return Ok(alive);
        }
        let bridges: Vec<&str> = dead
            .iter()
            .map(|e| e.bridge.as_str())
            .filter(|b| !b.is_empty() && cmd::link_exists(b))
            .collect();
        delete_links(bridges);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for e in &dead {
            if alive.iter().any(|a| a.root == e.root) {
                continue;
            }
            if !e.tag.is_empty() {
                let _ = nat::Chains::new(&e.tag).flush_and_remove();
            }
            let prefix = e.root.join("net/containers");
            for m in mountinfo
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4))
            {
                if Path::new(m).starts_with(&prefix) {
                    let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
        self.save(&alive)?;
        Ok(alive)
    }

    fn save(&self, entries: &[RegistryEntry]) -> Result<()> {
        let p = Path::new(REGISTRY_DIR).join("subnets.json");
        let data = serde_json::to_vec_pretty(entries).expect("entries serialise");
        crate::runtime::state::write_atomic(&p, &data).map_err(|e| NetError::Io {
            context: "writing",
            path: p,
            source: std::io::Error::other(e.to_string()),
        })
    }
}

/// Routes of the host (what the subnet must not overlap).
fn host_routes() -> Vec<Subnet> {
    let Ok(out) = cmd::run("ip", &["-4", "route", "show", "table", "all"], None) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| {
            let first = l
                .split_whitespace()
                .find(|w| w.contains('/') || w.parse::<Ipv4Addr>().is_ok())?;
            let s = if first.contains('/') {
                first.to_owned()
            } else {
                format!("{first}/32")
            };
            let (a, p) = s.split_once('/')?;
            let prefix: u8 = p.parse().ok()?;
            let addr: Ipv4Addr = a.parse().ok()?;
            (prefix > 0).then(|| {
                let mask = u32::MAX << (32 - prefix.min(32) as u32).min(31);
                Subnet {
                    addr: Ipv4Addr::from(u32::from(addr) & mask),
                    prefix,
                }
            })
        })
        .collect()
}

fn conflict(s: &Subnet, entries: &[RegistryEntry]) -> Option<String> {
    if let Some(e) = entries.iter().find(|e| e.subnet.overlaps(s)) {
        return Some(format!(
            "network {} ({}) of {}",
            e.network,
            e.subnet,
            e.root.display()
        ));
    }
    host_routes()
        .into_iter()
        .find(|r| r.overlaps(s))
        .map(|r| format!("the host route {r}"))
}

/// The first free /16 of 10.88.0.0 – 10.127.0.0 (private, and clear of the usual 10.0–10.87
/// corporate and cloud ranges), then /24s of 192.168.128.0 – 192.168.255.0.
fn pick_subnet(entries: &[RegistryEntry]) -> Option<Subnet> {
    let routes = host_routes();
    let candidates = (88..=127u8)
        .map(|b| Subnet {
            addr: Ipv4Addr::new(10, b, 0, 0),
            prefix: 16,
        })
        .chain((128..=255u8).map(|c| Subnet {
            addr: Ipv4Addr::new(192, 168, c, 0),
            prefix: 24,
        }));
    candidates.into_iter().find(|s| {
        !entries.iter().any(|e| e.subnet.overlaps(s)) && !routes.iter().any(|r| r.overlaps(s))
    })
}
