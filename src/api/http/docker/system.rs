//! `GET /version` and `GET /info`.

use crate::api::{SystemInfo, VersionInfo};
use serde_json::{Value, json};

/// Go's names for architectures, which clients compare against.
pub(crate) fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub(crate) fn version(v: &VersionInfo) -> Value {
    let arch = go_arch(&v.arch);
    json!({
        "Platform": { "Name": format!("berth {}", v.version) },
        "Components": [{
            "Name": "Engine",
            "Version": v.version,
            "Details": {
                "ApiVersion": v.api_version,
                "MinAPIVersion": v.min_api_version,
                "Os": v.os,
                "Arch": arch,
                "KernelVersion": v.kernel,
                "Experimental": "false",
                "GitCommit": "",
                "GoVersion": "",
                "BuildTime": "",
            },
        }],
        "Version": v.version,
        "ApiVersion": v.api_version,
        "MinAPIVersion": v.min_api_version,
        "GitCommit": "",
        "GoVersion": "",
        "Os": v.os,
        "Arch": arch,
        "KernelVersion": v.kernel,
        "Experimental": false,
        "BuildTime": "",
    })
}

/// Host facts `docker info` shows beside the engine's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HostFacts {
    pub hostname: String,
    pub ncpu: usize,
    pub mem_total: u64,
    pub operating_system: String,
    pub os_version: String,
    pub kernel: String,
    pub arch: String,
    pub version: String,
}

impl HostFacts {
    pub fn read(v: &VersionInfo) -> Self {
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let field = |k: &str| {
            os_release
                .lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(|s| s.trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024);
        Self {
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total,
            operating_system: field("PRETTY_NAME"),
            os_version: field("VERSION_ID"),
            kernel: v.kernel.clone(),
            arch: v.arch.clone(),
            version: v.version.clone(),
        }
    }
}

pub(crate) fn info(i: &SystemInfo, host: &HostFacts) -> Value {
    let stopped = i.containers.saturating_sub(i.containers_running);
    let labels = vec![format!("berth.policy={}", i.policy)];
    let mut v = json!({
        "ID": format!("berth:{}", host.hostname),
        "Containers": i.containers,
        "ContainersRunning": i.containers_running,
        "ContainersPaused": 0,
        "ContainersStopped": stopped,
        "Images": i.images,
        "Driver": "overlay",
        "DriverStatus": [],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "none"],
            "Authorization": null,
            "Log": ["json-file"],
        },
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": super::rfc3339_nanos(super::now_nanos()),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": i.cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": host.kernel,
        "OperatingSystem": host.operating_system,
        "OSVersion": host.os_version,
        "OSType": "linux",
        "Architecture": host.arch,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {},
            "Mirrors": [],
        },
    });
    let more = json!({
        "NCPU": host.ncpu,
        "MemTotal": host.mem_total,
        "DockerRootDir": i.root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": host.hostname,
        "Labels": labels,
        "ExperimentalBuild": false,
        "ServerVersion": host.version,
        "Runtimes": { "berth": { "path": "berth" } },
        "DefaultRuntime": "berth",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null,
        },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=no-new-privileges"],
        "Warnings": [],
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, more) {
        a.extend(b);
    }
    v
}

/// `GET /system/df`. The engine does not measure containers' writable layers yet: 0.
pub(crate) fn disk_usage(
    images: &[crate::api::ImageSummary],
    containers: &[crate::api::ContainerSummary],
    now: i64,
) -> Value {
    let layers: u64 = images.iter().map(|i| i.size).sum();
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| {
            let mut v = super::container::list_item(c, now);
            v["SizeRw"] = json!(0);
            v["SizeRootFs"] = json!(0);
            v
        })
        .collect();
    json!({
        "LayersSize": layers,
        "Images": images.iter().map(|i| super::image::list_item(i, false)).collect::<Vec<_>>(),
        "Containers": containers,
        "Volumes": [],
        "BuildCache": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> VersionInfo {
        VersionInfo {
            version: "0.1.0".into(),
            api_version: "1.44".into(),
            min_api_version: "1.24".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            kernel: "6.18.0".into(),
        }
    }

    #[test]
    fn disk_usage_sums_the_images() {
        let img = |size| crate::api::ImageSummary {
            id: "sha256:a".into(),
            repo_tags: vec![],
            repo_digests: vec![],
            size,
            created: None,
            containers: 1,
        };
        let j = disk_usage(&[img(10), img(32)], &[], 0);
        assert_eq!(j["LayersSize"], 42);
        assert_eq!(j["Images"].as_array().unwrap().len(), 2);
        assert_eq!(j["Images"][0]["Containers"], 1);
        assert_eq!(j["Volumes"], json!([]));
    }

    #[test]
    fn version_has_the_fields_clients_read() {
        let j = version(&v());
        assert_eq!(j["ApiVersion"], "1.44");
        assert_eq!(j["MinAPIVersion"], "1.24");
        assert_eq!(j["Arch"], "amd64");
        assert_eq!(j["Os"], "linux");
        assert_eq!(j["Components"][0]["Name"], "Engine");
        assert_eq!(j["Components"][0]["Details"]["ApiVersion"], "1.44");
        assert_eq!(j["KernelVersion"], "6.18.0");
    }

    #[test]
    fn info_counts_and_swarm_state() {
        let i = SystemInfo {
            root: "/var/lib/berth".into(),
            containers: 3,
            containers_running: 1,
            images: 2,
            cgroup_version: "1".into(),
            policy: "builtin".into(),
        };
        let host = HostFacts::read(&v());
        assert!(host.ncpu >= 1 && host.mem_total > 0);
        let j = info(&i, &host);
        assert_eq!(
            (
                &j["Containers"],
                &j["ContainersRunning"],
                &j["ContainersStopped"],
                &j["Images"]
            ),
            (&json!(3), &json!(1), &json!(2), &json!(2))
        );
        assert_eq!(j["Swarm"]["LocalNodeState"], "inactive");
        assert_eq!(j["DockerRootDir"], "/var/lib/berth");
        assert_eq!(j["CgroupVersion"], "1");
        assert_eq!(j["OSType"], "linux");
    }
}
