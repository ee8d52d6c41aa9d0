//! The image configuration blob (OCI `config.json`, Docker's is the same shape): what a
//! container built from the image runs with, and the layer history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, Result};

/// The image config document. Unknown fields are ignored on read; the stored blob keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: RunConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// How to run a container from the image (`config` in the image config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "set_map")]
    pub exposed_ports: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "set_map")]
    pub volumes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// `ExposedPorts` and `Volumes` are JSON objects whose values are `{}`: read them as key lists.
mod set_map {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(v: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
        let map: Option<BTreeMap<&str, BTreeMap<(), ()>>> = v
            .as_ref()
            .map(|v| v.iter().map(|k| (k.as_str(), BTreeMap::new())).collect());
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        let map: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(d)?;
        Ok(map.map(|m| m.into_keys().collect()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry: the command that made a layer (or an empty, metadata-only step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let c: ImageConfig =
            serde_json::from_slice(bytes).map_err(|e| ImageError::json("image config", e))?;
        if c.rootfs.kind != "layers" {
            return Err(ImageError::Unsupported {
                what: "rootfs type".into(),
                detail: c.rootfs.kind,
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config() {
        let d = Digest::of(b"l");
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"ExposedPorts":{{"80/tcp":{{}}}},
            "Labels":{{"a":"b"}},"Volumes":{{"/data":{{}}}},"WorkingDir":"/w","StopSignal":"SIGINT",
            "Healthcheck":{{"Test":["NONE"]}}}},
            "rootfs":{{"type":"layers","diff_ids":["{d}"]}},
            "history":[{{"created_by":"ADD x"}},{{"created_by":"CMD","empty_layer":true}}]}}"#
        );
        let c = ImageConfig::parse(json.as_bytes()).unwrap();
        assert_eq!(
            c.config.exposed_ports.as_deref(),
            Some(&["80/tcp".to_string()][..])
        );
        assert_eq!(
            c.config.volumes.as_deref(),
            Some(&["/data".to_string()][..])
        );
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.rootfs.diff_ids, vec![d]);
        assert!(c.history[1].empty_layer);
        let back = serde_json::to_string(&c).unwrap();
        assert!(back.contains(r#""ExposedPorts":{"80/tcp":{}}"#), "{back}");
    }
}
