//! Network commands, and the network part of a container's life: prepared before the runtime
//! creates it (a namespace joined with `NetworkMode::Join`, plus /etc/hosts, /etc/hostname and
//! /etc/resolv.conf as binds), torn down after it is removed, swept when a killed engine left
//! something behind. The work is `runtime::net`'s; this file maps it to commands and errors.

use std::collections::{BTreeMap, HashSet};

use crate::api::dispatch::Dispatcher;
use crate::api::error::ApiError;
use crate::api::handlers::container::runtime_error;
use crate::api::reply::Reply;
use crate::api::root::RootLock;
use crate::api::types::*;
use crate::runtime::net::{self, Net, NetError, PortSpec};
use crate::runtime::{self, Status};

pub(crate) fn net_error(context: &str, e: NetError) -> ApiError {
    match e {
        NetError::NoSuchNetwork(_) | NetError::Invalid { .. } | NetError::NotConnected { .. } => {
            ApiError::InvalidArgument(e.to_string())
        }
        NetError::Exists(_)
        | NetError::InUse { .. }
        | NetError::Overlap { .. }
        | NetError::PortInUse(_)
        | NetError::AlreadyConnected { .. } => ApiError::Conflict(e.to_string()),
        other => ApiError::engine(context, other),
    }
}

fn info(n: &net::Network, names: &dyn Fn(&str) -> String) -> NetworkInfo {
    NetworkInfo {
        id: n.id.clone(),
        name: n.name.clone(),
        driver: "bridge".into(),
        subnet: n.subnet.to_string(),
        gateway: n.gateway.to_string(),
        bridge: n.bridge.clone(),
        created: n.created,
        labels: n.labels.clone(),
        containers: n
            .endpoints
            .iter()
            .map(|(id, e)| NetworkEndpoint {
                id: id.clone(),
                name: names(id),
                ip: e.ip.to_string(),
            })
            .collect(),
    }
}

/// The `-p` specs of a config, and with `-P` the image's exposed ports on free host ports.
pub(crate) fn port_specs(
    cfg: &ContainerConfig,
    exposed: &[String],
) -> Result<Vec<PortSpec>, ApiError> {
    let mut out = Vec::new();
    for p in &cfg.publish {
        out.push(
            p.parse::<PortSpec>()
                .map_err(|e| ApiError::InvalidArgument(e.to_string()))?,
        );
    }
    if cfg.publish_all {
        for e in exposed {
            let mut p: PortSpec = e
                .parse()
                .map_err(|e: NetError| ApiError::InvalidArgument(e.to_string()))?;
            p.host_port = 0;
            if !out
                .iter()
                .any(|q| q.container_port == p.container_port && q.proto == p.proto)
            {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Docker's `HostConfig.PortBindings` of a config's `-p` specs (what was asked; the ports
/// actually given are in `NetworkSettings.Ports`).
pub(crate) fn port_bindings_json(cfg: &ContainerConfig) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for p in cfg
        .publish
        .iter()
        .filter_map(|p| p.parse::<PortSpec>().ok())
    {
        let key = format!("{}/{}", p.container_port, p.proto.as_str());
        let entry = m.entry(key).or_insert_with(|| serde_json::json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(serde_json::json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
            }));
        }
    }
    serde_json::Value::Object(m)
}

impl Dispatcher {
    pub(crate) fn net(&self) -> Result<Net, ApiError> {
        Net::open(self.root().path()).map_err(|e| net_error("opening the network state", e))
    }

    fn container_names(&self) -> impl Fn(&str) -> String + '_ {
        move |id: &str| {
            runtime::ContainerId::new(id)
                .ok()
                .and_then(|r| self.record_of(&r))
                .map(|r| r.name)
                .unwrap_or_else(|| id[..id.len().min(12)].to_owned())
        }
    }

    /// Remove what containers that no longer exist left behind (a killed engine, `--rm`
    /// containers removed by their monitor). Needs the root's change lock: no container is
    /// then between its network attachment and its creation.
    pub(crate) fn sweep_networks(&self, _lock: &RootLock) -> Result<(), ApiError> {
        let mut live: HashSet<String> = self
            .runtime()
            .list()
            .map_err(|e| runtime_error("listing containers", e))?
            .into_iter()
            .map(|st| st.id.as_str().to_owned())
            .collect();
        // A `--rm` container's monitor takes its network down right after the removal: not a
        // leftover (should the monitor die first, its trash entry goes stale, and then it is).
        live.extend(runtime::manager::being_removed(self.root().path()));
        self.net()?
            .sweep(&live)
            .map(drop)
            .map_err(|e| net_error("cleaning up networks", e))
    }

    /// Check what a create asks of the network before any work is done.
    pub(crate) fn check_network(&self, cfg: &ContainerConfig) -> Result<(), ApiError> {
        port_specs(cfg, &[])?;
        match &cfg.network {
            NetworkMode::Named(n) => {
                self.net()?
                    .get(n)
                    .map_err(|e| net_error("finding the network", e))?;
            }
            NetworkMode::Container(c) => {
                self.resolve_container(&ContainerId(c.clone()))?;
            }
            NetworkMode::None | NetworkMode::Host if !cfg.publish.is_empty() => {
                return Err(ApiError::InvalidArgument(
                    "published ports need a bridge network (not --network none or host)".into(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Prepare a new container's network (under the root's change lock, just before the
    /// runtime creates it): the namespace mode to give the runtime and the files to bind.
    pub(crate) fn network_attach(
        &self,
        id: &str,
        name: &str,
        hostname: &str,
        cfg: &ContainerConfig,
        exposed: &[String],
    ) -> Result<(runtime::NetworkMode, Vec<runtime::BindMount>), ApiError> {
        let files = |a: &net::Attachment, hostname: bool| {
            let mut b = vec![
                (a.hosts.clone(), "/etc/hosts"),
                (a.resolv.clone(), "/etc/resolv.conf"),
            ];
            if hostname {
                b.push((a.hostname_file.clone(), "/etc/hostname"));
            }
            b.into_iter()
                .map(|(source, dst)| runtime::BindMount {
                    source,
                    destination: dst.into(),
                    readonly: false,
                    propagation: None,
                })
                .collect::<Vec<_>>()
        };
        let networks = match &cfg.network {
            NetworkMode::None => return Ok((runtime::NetworkMode::None, Vec::new())),
            NetworkMode::Host => return Ok((runtime::NetworkMode::Host, Vec::new())),
            NetworkMode::Container(other) => {
                let rid = self.resolve_container(&ContainerId(other.clone()))?;
                if let Some(a) = self.net()?.attachment(rid.as_str()) {
                    return Ok((
                        runtime::NetworkMode::Join(a.netns.clone()),
                        files(&a, false),
                    ));
                }
                let rec = self.record_of(&rid);
                if rec.is_some_and(|r| r.config.network == NetworkMode::Host) {
                    return Ok((runtime::NetworkMode::Host, Vec::new()));
                }
                let st = self
                    .runtime()
                    .state(&rid)
                    .map_err(|e| runtime_error("joining a container's network", e))?;
                if !matches!(st.status, Status::Running | Status::Paused) || st.pid <= 0 {
                    return Err(ApiError::Conflict(format!(
                        "cannot join the network of container {other}: it is not running"
                    )));
                }
                let ns = format!("/proc/{}/ns/net", st.pid);
                return Ok((runtime::NetworkMode::Join(ns.into()), Vec::new()));
            }
            NetworkMode::Bridge => vec![net::DEFAULT_NETWORK.to_owned()],
            NetworkMode::Named(n) => vec![
                self.net()?
                    .get(n)
                    .map_err(|e| net_error("finding the network", e))?
                    .name,
            ],
        };
        let req = net::AttachRequest {
            container: id.to_owned(),
            name: name.to_owned(),
            hostname: hostname.to_owned(),
            networks,
            aliases: cfg.network_aliases.clone(),
            ports: port_specs(cfg, exposed)?,
        };
        let a = self
            .net()?
            .attach(&req)
            .map_err(|e| net_error("setting up the container's network", e))?;
        Ok((runtime::NetworkMode::Join(a.netns.clone()), files(&a, true)))
    }

    /// Tear down a removed container's network.
    pub(crate) fn network_detach(&self, id: &runtime::ContainerId) -> Result<(), ApiError> {
        self.net()?
            .detach(id.as_str())
            .map_err(|e| net_error("removing the container's network", e))
    }

    /// A container's published ports and addresses, for `ps` and inspect.
    pub(crate) fn network_of(&self, id: &str) -> Option<net::Attachment> {
        Net::open(self.root().path()).ok()?.attachment(id)
    }

    /// Docker's `NetworkSettings` of a container's inspect.
    pub(crate) fn network_settings(&self, id: &str) -> serde_json::Value {
        let Some(a) = self.network_of(id) else {
            return serde_json::json!({ "Networks": {}, "Ports": {} });
        };
        let mut ports = serde_json::Map::new();
        for p in &a.ports {
            let key = format!("{}/{}", p.container_port, p.proto.as_str());
            let entry = ports.entry(key).or_insert_with(|| serde_json::json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(serde_json::json!({
                    "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                    "HostPort": p.host_port.to_string(),
                }));
            }
        }
        let networks: serde_json::Map<String, serde_json::Value> = a
            .interfaces
            .iter()
            .map(|i| {
                (
                    i.network.clone(),
                    serde_json::json!({
                        "NetworkID": i.network_id,
                        "IPAddress": i.ip.to_string(),
                        "IPPrefixLen": i.prefix,
                        "Gateway": i.gateway.to_string(),
                        "Aliases": a.aliases,
                    }),
                )
            })
            .collect();
        let first = a.interfaces.first();
        serde_json::json!({
            "SandboxKey": a.netns,
            "IPAddress": first.map(|i| i.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": first.map(|i| i.prefix).unwrap_or(0),
            "Gateway": first.map(|i| i.gateway.to_string()).unwrap_or_default(),
            "Ports": ports,
            "Networks": networks,
        })
    }

    pub(crate) async fn network_list(&self) -> Result<Reply, ApiError> {
        // Endpoints of containers removed behind our back (`--rm`) are not shown.
        let lock = self.lock().await?;
        self.sweep_networks(&lock)?;
        drop(lock);
        let nets = self
            .net()?
            .list()
            .map_err(|e| net_error("listing networks", e))?;
        let names = self.container_names();
        Ok(Reply::Networks(
            nets.iter().map(|n| info(n, &names)).collect(),
        ))
    }

    pub(crate) async fn network_create(
        &self,
        name: String,
        subnet: Option<String>,
        labels: Vec<(String, String)>,
    ) -> Result<Reply, ApiError> {
        let subnet = subnet
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: NetError| ApiError::InvalidArgument(e.to_string()))?;
        let labels: BTreeMap<String, String> = labels.into_iter().collect();
        let n = self
            .net()?
            .create(&name, subnet, labels)
            .map_err(|e| net_error("creating the network", e))?;
        Ok(Reply::Network(info(&n, &self.container_names())))
    }

    pub(crate) async fn network_inspect(&self, name: String) -> Result<Reply, ApiError> {
        let lock = self.lock().await?;
        self.sweep_networks(&lock)?;
        drop(lock);
        let n = self
            .net()?
            .get(&name)
            .map_err(|e| net_error("finding the network", e))?;
        Ok(Reply::Network(info(&n, &self.container_names())))
    }

    pub(crate) async fn network_remove(&self, name: String) -> Result<Reply, ApiError> {
        let lock = self.lock().await?;
        self.sweep_networks(&lock)?;
        self.net()?
            .remove(&name)
            .map_err(|e| net_error("removing the network", e))?;
        Ok(Reply::Done)
    }

    pub(crate) async fn network_connect(
        &self,
        network: String,
        container: ContainerId,
        connect: bool,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&container)?;
        let net = self.net()?;
        if net.attachment(rid.as_str()).is_none() {
            return Err(ApiError::Conflict(format!(
                "container {container} has no network of its own (--network none, host or container:)"
            )));
        }
        let r = if connect {
            net.connect(rid.as_str(), &network).map(drop)
        } else {
            net.disconnect(rid.as_str(), &network)
        };
        r.map_err(|e| net_error("changing the container's networks", e))?;
        Ok(Reply::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_all_adds_exposed_ports_on_free_host_ports() {
        let cfg = ContainerConfig {
            publish: vec!["127.0.0.1:8080:80".into()],
            publish_all: true,
            ..Default::default()
        };
        let p = port_specs(&cfg, &["80/tcp".into(), "53/udp".into()]).unwrap();
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].host_port, 8080);
        assert_eq!((p[1].container_port, p[1].host_port), (53, 0));
        let bad = ContainerConfig {
            publish: vec!["80/sctp".into()],
            ..Default::default()
        };
        assert!(matches!(
            port_specs(&bad, &[]),
            Err(ApiError::InvalidArgument(_))
        ));
    }
}
