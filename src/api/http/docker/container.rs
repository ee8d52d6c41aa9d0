//! Containers: the create body, list items, inspect.

use super::{Filters, human_duration, labels_json, rfc3339_secs};
use crate::api::{
    ContainerConfig, ContainerState, ContainerSummary, NetworkMode, PortMapping, RestartPolicy,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A JSON field that old clients send as a string and new ones as a list (`Cmd`, `Entrypoint`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum StrOrList {
    One(String),
    Many(Vec<String>),
}

impl StrOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => s.split_whitespace().map(str::to_owned).collect(),
            Self::Many(v) => v,
        }
    }
}

/// The body of `POST /containers/create`: `Config` at the top level, `HostConfig` inside.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CreateBody {
    pub hostname: String,
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrOrList>,
    pub entrypoint: Option<StrOrList>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub host_config: Option<HostConfig>,
    pub networking_config: Option<NetworkingConfig>,
}

/// `NetworkingConfig`: per network, the endpoint's settings (`--network-alias`, `--ip`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointSettings>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct EndpointSettings {
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<Value>,
    pub links: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub network_mode: String,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    pub publish_all_ports: bool,
    pub restart_policy: Option<RestartPolicyJson>,
    pub auto_remove: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpu_shares: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
    pub pid_mode: String,
    pub ipc_mode: String,
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub mounts: Option<Vec<MountJson>>,
    // Set-but-unsupported options become warnings rather than silent drops.
    pub dns: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub devices: Option<Vec<Value>>,
    pub ulimits: Option<Vec<Value>>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub volumes_from: Option<Vec<String>>,
    pub links: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub oom_kill_disable: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct RestartPolicyJson {
    pub name: String,
    pub maximum_retry_count: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct MountJson {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

fn nonempty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// What a create body asks for, as the engine's config, plus warnings for what it ignores.
pub(crate) fn config_from_create(
    body: CreateBody,
    name: Option<String>,
    platform: Option<String>,
) -> Result<(ContainerConfig, Vec<String>), String> {
    if body.image.is_empty() {
        return Err("no image was given (Config.Image is empty)".into());
    }
    let hc = body.host_config.unwrap_or_default();
    let mut warnings = Vec::new();
    let mut ignored = |set: bool, what: &str| {
        if set {
            warnings.push(format!("berth ignores HostConfig.{what}"));
        }
    };
    ignored(nonempty(&hc.dns), "Dns");
    ignored(nonempty(&hc.extra_hosts), "ExtraHosts");
    ignored(nonempty(&hc.devices), "Devices");
    ignored(nonempty(&hc.ulimits), "Ulimits");
    ignored(
        hc.sysctls.as_ref().is_some_and(|s| !s.is_empty()),
        "Sysctls",
    );
    ignored(nonempty(&hc.volumes_from), "VolumesFrom");
    ignored(nonempty(&hc.links), "Links");
    ignored(nonempty(&hc.group_add), "GroupAdd");
    ignored(hc.oom_kill_disable == Some(true), "OomKillDisable");

    let entrypoint = match body.entrypoint.map(StrOrList::into_vec) {
        None => None,
        Some(v) if v.is_empty() => None,
        // `--entrypoint ""` arrives as [""]: clear the image's entrypoint.
        Some(v) if v.len() == 1 && v[0].is_empty() => Some(Vec::new()),
        Some(v) => Some(v),
    };
    let network = match hc.network_mode.as_str() {
        "" | "default" => NetworkMode::Bridge,
        m => m.parse()?,
    };
    let mut network_aliases = Vec::new();
    let endpoints = body
        .networking_config
        .and_then(|n| n.endpoints_config)
        .unwrap_or_default();
    for (net, ep) in endpoints {
        let Some(ep) = ep else { continue };
        let fixed = ep.ipam_config.as_ref().is_some_and(|v| {
            v.as_object().is_some_and(|o| {
                o.values()
                    .any(|x| !x.is_null() && x != "" && x != &json!([]))
            })
        });
        if fixed {
            return Err("fixed container addresses (--ip) are not supported by berth".into());
        }
        if ep.links.as_ref().is_some_and(|l| !l.is_empty()) {
            warnings.push("berth ignores NetworkingConfig links (use network aliases)".into());
        }
        let aliases = ep.aliases.unwrap_or_default();
        if aliases.is_empty() {
            continue;
        }
        // Aliases only mean something on the network the container joins.
        let here = match &network {
            NetworkMode::Named(n) => *n == net,
            NetworkMode::Bridge => matches!(net.as_str(), "bridge" | "default"),
            _ => false,
        };
        if !here {
            return Err(format!(
                "network aliases for {net} given, but the container joins {}",
                hc.network_mode
            ));
        }
        network_aliases.extend(aliases);
    }
    let restart = match hc.restart_policy {
        None => RestartPolicy::No,
        Some(p) => match p.name.as_str() {
            "on-failure" => RestartPolicy::OnFailure {
                max_retries: (p.maximum_retry_count > 0).then_some(p.maximum_retry_count),
            },
            other => other.parse()?,
        },
    };
    let mut publish = Vec::new();
    for (port, bindings) in hc.port_bindings.unwrap_or_default() {
        let port = if port.contains('/') {
            port
        } else {
            format!("{port}/tcp")
        };
        let bindings = bindings.unwrap_or_default();
        if bindings.is_empty() {
            publish.push(port.clone());
        }
        for b in bindings {
            publish.push(match (b.host_ip.as_str(), b.host_port.as_str()) {
                ("", "") => port.clone(),
                ("", hp) => format!("{hp}:{port}"),
                (ip, hp) => format!("{ip}:{hp}:{port}"),
            });
        }
    }
    let mut volumes: Vec<String> = hc.binds.unwrap_or_default();
    let mut tmpfs: Vec<String> = hc
        .tmpfs
        .unwrap_or_default()
        .into_iter()
        .map(|(p, o)| if o.is_empty() { p } else { format!("{p}:{o}") })
        .collect();
    for m in hc.mounts.unwrap_or_default() {
        let ro = if m.read_only { ":ro" } else { "" };
        match m.kind.as_str() {
            "bind" | "volume" if m.source.is_empty() => volumes.push(m.target),
            "bind" | "volume" => volumes.push(format!("{}:{}{ro}", m.source, m.target)),
            "tmpfs" => tmpfs.push(m.target),
            other => return Err(format!("mount type {other:?} is not supported")),
        }
    }
    // Anonymous volumes (`-v /data`) come in Config.Volumes.
    for (path, _) in body.volumes.unwrap_or_default() {
        if !volumes
            .iter()
            .any(|v| v.split(':').nth(1) == Some(path.as_str()))
        {
            volumes.push(path);
        }
    }
    let cpus = if hc.nano_cpus > 0 {
        Some(hc.nano_cpus as f64 / 1e9)
    } else if hc.cpu_quota > 0 {
        let period = if hc.cpu_period > 0 {
            hc.cpu_period
        } else {
            100_000
        };
        Some(hc.cpu_quota as f64 / period as f64)
    } else {
        None
    };
    let config = ContainerConfig {
        image: body.image.into(),
        name: name.filter(|n| !n.is_empty()),
        cmd: body.cmd.map(StrOrList::into_vec).unwrap_or_default(),
        entrypoint,
        env: body.env.unwrap_or_default(),
        workdir: Some(body.working_dir).filter(|w| !w.is_empty()),
        user: Some(body.user).filter(|u| !u.is_empty()),
        hostname: Some(body.hostname).filter(|h| !h.is_empty()),
        tty: body.tty,
        open_stdin: body.open_stdin,
        memory: (hc.memory > 0).then_some(hc.memory as u64),
        memory_swap: (hc.memory_swap != 0).then_some(hc.memory_swap),
        cpus,
        cpu_shares: (hc.cpu_shares > 0).then_some(hc.cpu_shares as u64),
        cpuset_cpus: Some(hc.cpuset_cpus).filter(|c| !c.is_empty()),
        pids_limit: hc.pids_limit.filter(|p| *p > 0),
        cap_add: hc.cap_add.unwrap_or_default(),
        cap_drop: hc.cap_drop.unwrap_or_default(),
        privileged: hc.privileged,
        read_only: hc.readonly_rootfs,
        security_opt: hc.security_opt.unwrap_or_default(),
        restart,
        network,
        publish,
        publish_all: hc.publish_all_ports,
        network_aliases,
        volumes,
        tmpfs,
        labels: body.labels.unwrap_or_default().into_iter().collect(),
        stop_timeout: body
            .stop_timeout
            .filter(|t| *t >= 0)
            .map(|t| t.min(u32::MAX as i64) as u32),
        stop_signal: body.stop_signal.filter(|s| !s.is_empty()),
        auto_remove: hc.auto_remove,
        pid_host: hc.pid_mode == "host",
        ipc_host: hc.ipc_mode == "host",
        platform: platform.filter(|p| !p.is_empty()),
    };
    Ok((config, warnings))
}

/// STATUS as `docker ps` shows it.
pub(crate) fn status_text(c: &ContainerSummary, now: i64) -> String {
    let ago = |t: Option<i64>| t.map(|t| format!(" {} ago", human_duration(now - t)));
    match c.state {
        ContainerState::Created => "Created".into(),
        ContainerState::Running => {
            format!("Up {}", human_duration(now - c.started_at.unwrap_or(now)))
        }
        ContainerState::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - c.started_at.unwrap_or(now))
        ),
        ContainerState::Restarting => format!(
            "Restarting ({}){}",
            c.exit_code.unwrap_or(0),
            ago(c.finished_at).unwrap_or_default()
        ),
        ContainerState::Exited => format!(
            "Exited ({}){}",
            // Unknown when the container's monitor died: said so, not a made-up 0.
            c.exit_code
                .map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
            ago(c.finished_at).unwrap_or_default()
        ),
        ContainerState::Dead => "Dead".into(),
    }
}

fn ports_json(ports: &[PortMapping]) -> Value {
    ports
        .iter()
        .map(|p| {
            json!({
                "IP": p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                "PrivatePort": p.container_port,
                "PublicPort": p.host_port,
                "Type": p.protocol,
            })
        })
        .collect()
}

/// One item of `GET /containers/json`.
pub(crate) fn list_item(c: &ContainerSummary, now: i64) -> Value {
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": "",
        "Command": c.command,
        "Created": c.created,
        "Ports": ports_json(&c.ports),
        "Labels": {},
        "State": c.state.as_str(),
        "Status": status_text(c, now),
        "HostConfig": { "NetworkMode": "default" },
        "NetworkSettings": { "Networks": {} },
        "Mounts": [],
    })
}

/// The filters `GET /containers/json` understands.
pub(crate) const LIST_FILTERS: &[&str] = &["id", "name", "status", "exited", "ancestor"];

/// Whether a container passes `docker ps --filter`s.
pub(crate) fn list_matches(c: &ContainerSummary, f: &Filters) -> Result<bool, String> {
    f.only(LIST_FILTERS)?;
    for code in f.get("exited") {
        code.parse::<i32>()
            .map_err(|_| format!("invalid filter 'exited={code}'"))?;
    }
    Ok(f.any("id", |id| c.id.0.starts_with(id))
        && f.any("name", |n| c.name.contains(n.trim_start_matches('/')))
        && f.any("status", |s| s == c.state.as_str())
        && f.any("exited", |code| {
            c.state == ContainerState::Exited && code.parse().ok() == c.exit_code
        })
        && f.any("ancestor", |img| {
            c.image == img
                || c.image
                    .strip_prefix(img)
                    .is_some_and(|r| r.starts_with(':'))
        }))
}

/// `docker ps` without `-a` shows running ones, unless a status filter asks for others.
pub(crate) fn list_wants_all(all: bool, f: &Filters) -> bool {
    all || !f.get("status").is_empty() || !f.get("exited").is_empty()
}

/// What `ContainerInspect` is expected to answer (as `Reply::Json`), unless it already answers
/// in Docker's shape (an object with `Id` and a `State` object), which is passed through.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ContainerDetails {
    pub summary: ContainerSummary,
    pub config: ContainerConfig,
    /// The image's id (`sha256:…`).
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default)]
    pub log_path: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    /// Why the last start failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// `GET /containers/{id}/json` from the engine's answer.
pub(crate) fn inspect(v: Value) -> Result<Value, String> {
    if v.get("Id").is_some_and(Value::is_string) && v.get("State").is_some_and(Value::is_object) {
        return Ok(v);
    }
    let d: ContainerDetails = serde_json::from_value(v)
        .map_err(|e| format!("the engine's container record is not understood: {e}"))?;
    Ok(inspect_details(&d))
}

fn port_bindings(publish: &[String]) -> Value {
    let mut m = Map::new();
    for spec in publish {
        let (spec, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let (cport, hport, ip) = match parts.as_slice() {
            [c] => (*c, "", ""),
            [c, h] => (*c, *h, ""),
            [c, h, ip] => (*c, *h, *ip),
            _ => continue,
        };
        let entry = m
            .entry(format!("{cport}/{proto}"))
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(json!({ "HostIp": ip, "HostPort": hport }));
        }
    }
    Value::Object(m)
}

fn inspect_details(d: &ContainerDetails) -> Value {
    let s = &d.summary;
    let c = &d.config;
    let mut argv: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    argv.extend(c.cmd.iter().cloned());
    if argv.is_empty() {
        argv = s.command.split_whitespace().map(str::to_owned).collect();
    }
    let (path, args) = match argv.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let (restart_name, retries) = match c.restart {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries.unwrap_or(0)),
    };
    let network = match &c.network {
        NetworkMode::None => "none".to_owned(),
        NetworkMode::Host => "host".to_owned(),
        NetworkMode::Bridge => "bridge".to_owned(),
        NetworkMode::Named(n) => n.clone(),
        NetworkMode::Container(n) => format!("container:{n}"),
    };
    let mut ports = Map::new();
    for p in &s.ports {
        ports.insert(
            format!("{}/{}", p.container_port, p.protocol),
            json!([{ "HostIp": p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()), "HostPort": p.host_port.to_string() }]),
        );
    }
    let tmpfs: Map<String, Value> = c
        .tmpfs
        .iter()
        .map(|t| {
            let (p, o) = t.split_once(':').unwrap_or((t, ""));
            (p.to_owned(), Value::String(o.to_owned()))
        })
        .collect();
    json!({
        "Id": s.id,
        "Created": rfc3339_secs(Some(s.created)),
        "Path": path,
        "Args": args,
        "State": {
            "Status": s.state.as_str(),
            "Running": s.state.is_alive(),
            "Paused": s.state == ContainerState::Paused,
            "Restarting": s.state == ContainerState::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.state == ContainerState::Dead,
            "Pid": s.pid.unwrap_or(0),
            "ExitCode": s.exit_code.unwrap_or(0),
            "Error": d.error.clone().unwrap_or_default(),
            "StartedAt": rfc3339_secs(s.started_at),
            "FinishedAt": rfc3339_secs(s.finished_at),
        },
        "Image": d.image_id.clone().unwrap_or_default(),
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": d.log_path.clone().unwrap_or_default(),
        "Name": format!("/{}", s.name),
        "RestartCount": d.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": c.volumes.iter().filter(|v| v.contains(':')).collect::<Vec<_>>(),
            "NetworkMode": network,
            "PortBindings": port_bindings(&c.publish),
            "RestartPolicy": { "Name": restart_name, "MaximumRetryCount": retries },
            "AutoRemove": c.auto_remove,
            "CapAdd": c.cap_add,
            "CapDrop": c.cap_drop,
            "Privileged": c.privileged,
            "ReadonlyRootfs": c.read_only,
            "SecurityOpt": c.security_opt,
            "Memory": c.memory.unwrap_or(0),
            "MemorySwap": c.memory_swap.unwrap_or(0),
            "NanoCpus": c.cpus.map_or(0, |n| (n * 1e9) as i64),
            "CpuShares": c.cpu_shares.unwrap_or(0),
            "CpusetCpus": c.cpuset_cpus.clone().unwrap_or_default(),
            "PidsLimit": c.pids_limit,
            "PidMode": if c.pid_host { "host" } else { "" },
            "IpcMode": if c.ipc_host { "host" } else { "private" },
            "Tmpfs": tmpfs,
        },
        "Mounts": [],
        "Config": {
            "Hostname": c.hostname.clone().unwrap_or_else(|| s.id.short().to_owned()),
            "Domainname": "",
            "User": c.user.clone().unwrap_or_default(),
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": c.tty,
            "OpenStdin": c.open_stdin,
            "StdinOnce": false,
            "Env": c.env,
            "Cmd": if c.cmd.is_empty() { Value::Null } else { json!(c.cmd) },
            "Image": c.image,
            "Volumes": null,
            "WorkingDir": c.workdir.clone().unwrap_or_default(),
            "Entrypoint": c.entrypoint,
            "OnBuild": null,
            "Labels": labels_json(&c.labels),
            "StopSignal": c.stop_signal,
            "StopTimeout": c.stop_timeout,
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "Ports": ports,
            "Networks": {},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ContainerId;

    /// The create body the CLI 28.2 sends for `docker run --rm -it -p 8080:80 -v /srv:/data:ro
    /// --name web -e A=1 --memory 64m --cpus 1.5 --restart on-failure:3 busybox sh -c 'echo hi'`
    /// (abridged: the zero-valued HostConfig keys are left out, they are ignored).
    const CLI_BODY: &str = r#"{
      "Hostname":"","Domainname":"","User":"","AttachStdin":true,"AttachStdout":true,
      "AttachStderr":true,"ExposedPorts":{"80/tcp":{}},"Tty":true,"OpenStdin":true,
      "StdinOnce":true,"Env":["A=1"],"Cmd":["sh","-c","echo hi"],"Image":"busybox",
      "Volumes":{"/cache":{}},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"team":"a"},
      "HostConfig":{"Binds":["/srv:/data:ro"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},
        "NetworkMode":"default","PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
        "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"AutoRemove":true,
        "VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[40,120],"CapAdd":null,"CapDrop":null,
        "CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,
        "IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,
        "PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"",
        "ShmSize":0,"Isolation":"","CpuShares":0,"Memory":67108864,"NanoCpus":1500000000,
        "CgroupParent":"","BlkioWeight":0,"CpuPeriod":0,"CpuQuota":0,"CpusetCpus":"","Devices":[],
        "MemorySwap":0,"OomKillDisable":false,"PidsLimit":null,"Ulimits":[],"MaskedPaths":null,
        "ReadonlyPaths":null},
      "NetworkingConfig":{"EndpointsConfig":{"default":{}}}
    }"#;

    #[test]
    fn the_clis_create_body_maps_to_the_engines_config() {
        let body: CreateBody = serde_json::from_str(CLI_BODY).unwrap();
        let (c, warnings) = config_from_create(body, Some("web".into()), None).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.image.0, "busybox");
        assert_eq!(c.name.as_deref(), Some("web"));
        assert_eq!(c.cmd, ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.env, ["A=1"]);
        assert!(c.tty && c.open_stdin && c.auto_remove);
        assert_eq!(c.memory, Some(64 << 20));
        assert_eq!(c.memory_swap, None);
        assert_eq!(c.cpus, Some(1.5));
        assert_eq!(c.pids_limit, None);
        assert_eq!(
            c.restart,
            RestartPolicy::OnFailure {
                max_retries: Some(3)
            }
        );
        assert_eq!(c.network, NetworkMode::Bridge);
        assert_eq!(c.publish, ["8080:80/tcp"]);
        assert_eq!(c.volumes, ["/srv:/data:ro", "/cache"]);
        assert_eq!(c.labels, [("team".to_owned(), "a".to_owned())]);
        assert_eq!(c.workdir, None);
        assert_eq!(c.user, None);
    }

    #[test]
    fn entrypoint_cleared_string_cmd_mounts_and_warnings() {
        let body: CreateBody = serde_json::from_str(
            r#"{"Image":"alpine","Cmd":"echo hi","Entrypoint":[""],"User":"1000:1000",
               "StopTimeout":5,"StopSignal":"SIGINT",
               "HostConfig":{"NetworkMode":"host","PidMode":"host","Privileged":true,
                 "Mounts":[{"Type":"volume","Source":"db","Target":"/var/lib/db","ReadOnly":true},
                           {"Type":"tmpfs","Target":"/scratch"}],
                 "Tmpfs":{"/run":"size=64m"},"PidsLimit":100,"CpuQuota":50000,"CpuPeriod":100000,
                 "CapAdd":["NET_ADMIN"],"Dns":["1.1.1.1"],"RestartPolicy":{"Name":"always"},
                 "PortBindings":{"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],"9000":[{"HostIp":"","HostPort":""}]}}}"#,
        )
        .unwrap();
        let (c, warnings) = config_from_create(body, None, Some("linux/amd64".into())).unwrap();
        assert_eq!(c.cmd, ["echo", "hi"]);
        assert_eq!(c.entrypoint, Some(vec![]));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(
            (c.stop_timeout, c.stop_signal.as_deref()),
            (Some(5), Some("SIGINT"))
        );
        assert_eq!(c.network, NetworkMode::Host);
        assert!(c.pid_host && c.privileged && !c.ipc_host);
        assert_eq!(c.volumes, ["db:/var/lib/db:ro"]);
        assert_eq!(c.tmpfs, ["/run:size=64m", "/scratch"]);
        assert_eq!(c.pids_limit, Some(100));
        assert_eq!(c.cpus, Some(0.5));
        assert_eq!(c.cap_add, ["NET_ADMIN"]);
        assert_eq!(c.restart, RestartPolicy::Always);
        assert_eq!(c.publish, ["127.0.0.1:5353:53/udp", "9000/tcp"]);
        assert_eq!(c.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(warnings, ["berth ignores HostConfig.Dns"]);
    }

    /// `docker run --network backend --network-alias db -P IMAGE` (CLI 28.2, abridged).
    #[test]
    fn network_aliases_and_publish_all_come_through() {
        let body: CreateBody = serde_json::from_str(
            r#"{"Image":"x","HostConfig":{"NetworkMode":"backend","PublishAllPorts":true},
               "NetworkingConfig":{"EndpointsConfig":{"backend":{"Aliases":["db"],"IPAMConfig":null}}}}"#,
        )
        .unwrap();
        let (c, _) = config_from_create(body, None, None).unwrap();
        assert_eq!(c.network, NetworkMode::Named("backend".into()));
        assert_eq!(c.network_aliases, ["db"]);
        assert!(c.publish_all);
        let elsewhere: CreateBody = serde_json::from_str(
            r#"{"Image":"x","HostConfig":{"NetworkMode":"front"},
               "NetworkingConfig":{"EndpointsConfig":{"back":{"Aliases":["db"]}}}}"#,
        )
        .unwrap();
        assert!(config_from_create(elsewhere, None, None).is_err());
        let fixed: CreateBody = serde_json::from_str(
            r#"{"Image":"x","HostConfig":{"NetworkMode":"back"},
               "NetworkingConfig":{"EndpointsConfig":{"back":{"IPAMConfig":{"IPv4Address":"10.1.0.9"}}}}}"#,
        )
        .unwrap();
        assert!(
            config_from_create(fixed, None, None)
                .unwrap_err()
                .contains("--ip")
        );
    }

    #[test]
    fn create_without_an_image_or_with_a_bad_mode_is_refused() {
        assert!(config_from_create(CreateBody::default(), None, None).is_err());
        let body: CreateBody = serde_json::from_str(
            r#"{"Image":"x","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#,
        )
        .unwrap();
        assert!(
            config_from_create(body, None, None)
                .unwrap_err()
                .contains("sometimes")
        );
    }

    fn summary(state: ContainerState) -> ContainerSummary {
        ContainerSummary {
            id: ContainerId("0123456789ab".repeat(5) + "cdef"),
            name: "web".into(),
            image: "busybox:latest".into(),
            command: "sh -c 'echo hi'".into(),
            created: 1000,
            state,
            started_at: Some(1000),
            finished_at: Some(1100),
            exit_code: Some(3),
            oom_killed: false,
            pid: Some(42),
            ports: vec![PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
            }],
        }
    }

    #[test]
    fn list_items_read_like_docker_ps() {
        let j = list_item(&summary(ContainerState::Running), 1300);
        assert_eq!(j["Names"], json!(["/web"]));
        assert_eq!(j["State"], "running");
        assert_eq!(j["Status"], "Up 5 minutes");
        assert_eq!(j["Created"], 1000);
        assert_eq!(
            j["Ports"],
            json!([{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}])
        );
        assert_eq!(j["Id"].as_str().unwrap().len(), 64);
        assert_eq!(
            status_text(&summary(ContainerState::Exited), 1100 + 7200),
            "Exited (3) 2 hours ago"
        );
        assert_eq!(status_text(&summary(ContainerState::Created), 0), "Created");
        assert_eq!(
            status_text(&summary(ContainerState::Paused), 1001),
            "Up 1 second (Paused)"
        );
    }

    #[test]
    fn list_filters() {
        let f = |s: &str| Filters::parse(Some(s)).unwrap();
        let running = summary(ContainerState::Running);
        let exited = summary(ContainerState::Exited);
        assert!(list_matches(&running, &f(r#"{"status":["running"]}"#)).unwrap());
        assert!(!list_matches(&exited, &f(r#"{"status":["running"]}"#)).unwrap());
        assert!(list_matches(&exited, &f(r#"{"exited":["3"]}"#)).unwrap());
        assert!(!list_matches(&exited, &f(r#"{"exited":["0"]}"#)).unwrap());
        assert!(list_matches(&running, &f(r#"{"name":{"we":true}}"#)).unwrap());
        assert!(list_matches(&running, &f(r#"{"id":["0123"]}"#)).unwrap());
        assert!(!list_matches(&running, &f(r#"{"id":["fff"]}"#)).unwrap());
        assert!(list_matches(&running, &f(r#"{"ancestor":["busybox"]}"#)).unwrap());
        assert!(!list_matches(&running, &f(r#"{"ancestor":["busy"]}"#)).unwrap());
        assert!(list_matches(&running, &f(r#"{"label":["a=b"]}"#)).is_err());
        assert!(list_matches(&running, &f(r#"{"exited":["x"]}"#)).is_err());
        assert!(list_wants_all(false, &f(r#"{"status":["exited"]}"#)));
        assert!(!list_wants_all(false, &f(r#"{"name":["x"]}"#)));
    }

    #[test]
    fn inspect_maps_the_engines_record_and_passes_dockers_shape_through() {
        let details = json!({
            "summary": summary(ContainerState::Running),
            "config": ContainerConfig {
                image: "busybox".into(),
                cmd: vec!["sleep".into(), "60".into()],
                tty: true,
                publish: vec!["127.0.0.1:8080:80".into()],
                ..Default::default()
            },
            "image_id": "sha256:abc",
        });
        let j = inspect(details).unwrap();
        assert_eq!(j["State"]["Running"], true);
        assert_eq!(j["State"]["Status"], "running");
        assert_eq!(j["State"]["Pid"], 42);
        assert_eq!(j["Config"]["Tty"], true);
        assert_eq!(j["Config"]["Image"], "busybox");
        assert_eq!(j["Name"], "/web");
        assert_eq!(
            (j["Path"].clone(), j["Args"].clone()),
            (json!("sleep"), json!(["60"]))
        );
        assert_eq!(j["Image"], "sha256:abc");
        assert_eq!(
            j["HostConfig"]["PortBindings"],
            json!({"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]})
        );
        assert_eq!(j["State"]["StartedAt"], "1970-01-01T00:16:40Z");
        let docker = json!({"Id": "abc", "State": {"Running": false}, "Config": {"Tty": false}});
        assert_eq!(inspect(docker.clone()).unwrap(), docker);
        assert!(inspect(json!({"what": 1})).is_err());
    }
}
