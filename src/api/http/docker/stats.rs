//! `GET /containers/{id}/stats`: a sample in Docker's shape.
//!
//! The CLI computes CPU % as `Δtotal_usage / Δsystem_cpu_usage × online_cpus × 100`. The
//! engine's sample already carries its CPU % (of one CPU) over its own interval, so the
//! previous reading (`precpu_stats`) is derived from it over a one-second window, with the
//! system counter advancing `online_cpus` seconds per second as the host's does: the CLI then
//! shows exactly the engine's figure, even for a single sample (`--no-stream`).

use super::rfc3339_nanos;
use crate::api::StatsSample;
use serde_json::{Value, json};

const WINDOW_NS: u64 = 1_000_000_000;

pub(crate) fn stats_json(s: &StatsSample, name: &str, online_cpus: u64, host_mem: u64) -> Value {
    let cpus = online_cpus.max(1);
    let system = (s.time.max(0) as u64).saturating_mul(cpus);
    let used_in_window = (s.cpu_percent.max(0.0) / 100.0 * WINDOW_NS as f64) as u64;
    let pre_total = s.cpu_total_ns.saturating_sub(used_in_window);
    let pre_system = system.saturating_sub(WINDOW_NS * cpus);
    json!({
        "id": s.id,
        "name": format!("/{name}"),
        "read": rfc3339_nanos(s.time),
        "preread": rfc3339_nanos(s.time - WINDOW_NS as i64),
        "num_procs": 0,
        "pids_stats": { "current": s.pids },
        "cpu_stats": {
            "cpu_usage": { "total_usage": s.cpu_total_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
            "system_cpu_usage": system,
            "online_cpus": cpus,
            "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
        },
        "precpu_stats": {
            "cpu_usage": { "total_usage": pre_total, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
            "system_cpu_usage": pre_system,
            "online_cpus": cpus,
            "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
        },
        // The engine's figure is already net of page cache, so no `cache`/`inactive_file`.
        "memory_stats": {
            "usage": s.memory_bytes,
            "limit": s.memory_limit.unwrap_or(host_mem),
            "stats": {},
        },
        "blkio_stats": {
            "io_service_bytes_recursive": [
                { "major": 0, "minor": 0, "op": "read", "value": s.block_read },
                { "major": 0, "minor": 0, "op": "write", "value": s.block_write },
            ],
        },
        "networks": {
            "eth0": {
                "rx_bytes": s.net_rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                "tx_bytes": s.net_tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The docker CLI's CPU % formula (cli/command/container/stats_helpers.go).
    fn cli_cpu_percent(v: &Value) -> f64 {
        let f = |p: &str| v.pointer(p).unwrap().as_u64().unwrap() as f64;
        let cpu_delta =
            f("/cpu_stats/cpu_usage/total_usage") - f("/precpu_stats/cpu_usage/total_usage");
        let sys_delta = f("/cpu_stats/system_cpu_usage") - f("/precpu_stats/system_cpu_usage");
        cpu_delta / sys_delta * f("/cpu_stats/online_cpus") * 100.0
    }

    #[test]
    fn the_cli_computes_the_engines_cpu_percent_and_reads_the_rest() {
        let s = StatsSample {
            id: "abc".into(),
            time: 1_700_000_000_000_000_000,
            cpu_total_ns: 9_000_000_000,
            cpu_percent: 150.0,
            memory_bytes: 10 << 20,
            memory_limit: Some(64 << 20),
            pids: 3,
            block_read: 4096,
            block_write: 8192,
            net_rx: 100,
            net_tx: 200,
        };
        let v = stats_json(&s, "web", 4, 1 << 30);
        assert!(
            (cli_cpu_percent(&v) - 150.0).abs() < 1e-6,
            "{}",
            cli_cpu_percent(&v)
        );
        assert_eq!(v["name"], "/web");
        assert_eq!(v["memory_stats"]["usage"], 10 << 20);
        assert_eq!(v["memory_stats"]["limit"], 64 << 20);
        assert_eq!(v["pids_stats"]["current"], 3);
        assert_eq!(v["networks"]["eth0"]["tx_bytes"], 200);
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][1]["op"],
            "write"
        );
        let unlimited = StatsSample {
            memory_limit: None,
            ..s
        };
        assert_eq!(
            stats_json(&unlimited, "web", 4, 1 << 30)["memory_stats"]["limit"],
            1 << 30
        );
    }
}
