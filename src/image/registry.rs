//! Talking to registries: which may use plain HTTP (Docker's rule: registries on 127.0.0.0/8 and
//! ::1 by default, others only when listed as insecure), credentials from the Docker config file
//! (`auths.<registry>.auth` = base64 `user:password`), and `login`, which stores them there.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Once;

use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use super::error::{ImageError, Result};
use super::reference::Reference;
use super::store::write_atomic;

/// Registry access settings.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) that may be reached over plain HTTP, besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// The Docker-style config file with `auths`; `None` = `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`.
    pub auth_file: Option<PathBuf>,
}

impl RegistryOptions {
    pub fn auth_file(&self) -> Option<PathBuf> {
        if let Some(p) = &self.auth_file {
            return Some(p.clone());
        }
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(d).join("config.json"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
    }

    /// Whether plain HTTP is allowed for the reference's registry.
    pub fn allows_http(&self, r: &Reference) -> bool {
        let host = r.registry_host();
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        loopback
            || self
                .insecure_registries
                .iter()
                .any(|i| i == r.registry() || i == host)
    }

    /// An oci-client for the reference's registry.
    pub fn client(&self, r: &Reference) -> oci_client::Client {
        self.make_client(r, false)
    }

    /// A client that uploads blobs in one streamed PUT (what every registry accepts).
    pub fn push_client(&self, r: &Reference) -> oci_client::Client {
        self.make_client(r, true)
    }

    fn make_client(&self, r: &Reference, monolithic: bool) -> oci_client::Client {
        static PROVIDER: Once = Once::new();
        PROVIDER.call_once(|| {
            // Another part of the process may have installed one already; either is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let protocol = if self.allows_http(r) {
            ClientProtocol::HttpsExcept(vec![r.registry().to_owned()])
        } else {
            ClientProtocol::Https
        };
        oci_client::Client::new(ClientConfig {
            protocol,
            max_concurrent_download: 8,
            use_monolithic_push: monolithic,
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            read_timeout: Some(std::time::Duration::from_secs(300)),
            ..Default::default()
        })
    }

    /// Credentials for the reference's registry from the auth file, or anonymous.
    pub fn auth(&self, r: &Reference) -> Result<RegistryAuth> {
        let Some(path) = self.auth_file() else {
            return Ok(RegistryAuth::Anonymous);
        };
        let Ok(data) = std::fs::read(&path) else {
            return Ok(RegistryAuth::Anonymous);
        };
        let bad = |reason: String| ImageError::Credentials {
            registry: r.registry().into(),
            reason: format!("{}: {reason}", path.display()),
        };
        let doc: serde_json::Value =
            serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
        let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
            return Ok(RegistryAuth::Anonymous);
        };
        let keys = auth_keys(r.registry());
        let entry = auths
            .iter()
            .find(|(k, _)| keys.iter().any(|c| c == k.trim_end_matches('/')));
        let Some((_, entry)) = entry else {
            return Ok(RegistryAuth::Anonymous);
        };
        if let Some(enc) = entry
            .get("auth")
            .and_then(|a| a.as_str())
            .filter(|s| !s.is_empty())
        {
            let dec = base64::engine::general_purpose::STANDARD
                .decode(enc.trim())
                .map_err(|e| bad(format!("auth is not base64: {e}")))?;
            let dec = String::from_utf8(dec).map_err(|_| bad("auth is not UTF-8".into()))?;
            let (u, p) = dec
                .split_once(':')
                .ok_or_else(|| bad("auth must decode to user:password".into()))?;
            return Ok(RegistryAuth::Basic(u.into(), p.into()));
        }
        match (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            (Some(u), Some(p)) => Ok(RegistryAuth::Basic(u.into(), p.into())),
            _ => Ok(RegistryAuth::Anonymous),
        }
    }

    /// Stores credentials for `registry` in the auth file (as `docker login` does), keeping
    /// everything else in the file. Returns the file written.
    pub fn login(&self, registry: &str, user: &str, password: &str) -> Result<PathBuf> {
        let path = self.auth_file().ok_or_else(|| ImageError::Credentials {
            registry: registry.into(),
            reason: "no HOME or DOCKER_CONFIG to store credentials in".into(),
        })?;
        store_login(&path, registry, user, password)?;
        Ok(path)
    }
}

/// The keys Docker config files use for a registry.
fn auth_keys(registry: &str) -> Vec<String> {
    if registry == "docker.io" {
        return vec![
            "https://index.docker.io/v1".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![
        registry.into(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
}

fn store_login(path: &Path, registry: &str, user: &str, password: &str) -> Result<()> {
    let bad = |reason: String| ImageError::Credentials {
        registry: registry.into(),
        reason: format!("{}: {reason}", path.display()),
    };
    let mut doc: serde_json::Value = match std::fs::read(path) {
        Ok(d) => serde_json::from_slice(&d).map_err(|e| bad(e.to_string()))?,
        Err(_) => serde_json::json!({}),
    };
    let key = if registry == "docker.io" {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    };
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    let auths = auths
        .as_object_mut()
        .ok_or_else(|| bad("auths is not an object".into()))?;
    auths.insert(key, serde_json::json!({ "auth": enc }));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ImageError::io("create", dir, e))?;
    }
    let data = serde_json::to_vec_pretty(&doc).map_err(|e| ImageError::json("auth file", e))?;
    write_atomic(path, &data)?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(())
}

/// Turns an oci-client error into ours, naming the reference.
pub(crate) fn registry_error(r: &Reference, e: impl std::fmt::Display) -> ImageError {
    ImageError::Registry {
        reference: r.to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_for_loopback_or_listed() {
        let o = RegistryOptions::default();
        assert!(o.allows_http(&Reference::parse("127.0.0.1:5055/x").unwrap()));
        assert!(o.allows_http(&Reference::parse("127.1.2.3:80/x").unwrap()));
        assert!(o.allows_http(&Reference::parse("localhost:5000/x").unwrap()));
        assert!(o.allows_http(&Reference::parse("[::1]:5000/x").unwrap()));
        assert!(!o.allows_http(&Reference::parse("10.0.0.1:5000/x").unwrap()));
        assert!(!o.allows_http(&Reference::parse("busybox").unwrap()));
        let o = RegistryOptions {
            insecure_registries: vec!["reg.lan:5000".into()],
            ..Default::default()
        };
        assert!(o.allows_http(&Reference::parse("reg.lan:5000/x").unwrap()));
        assert!(!o.allows_http(&Reference::parse("reg.lan:5001/x").unwrap()));
    }

    #[test]
    fn credentials_round_trip_through_the_config_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.json");
        std::fs::write(&file, r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="}},"psFormat":"x"}"#).unwrap();
        let o = RegistryOptions {
            auth_file: Some(file.clone()),
            ..Default::default()
        };
        let hub = o.auth(&Reference::parse("busybox").unwrap()).unwrap();
        assert!(matches!(hub, RegistryAuth::Basic(u, p) if u == "hub" && p == "secret"));
        let r = Reference::parse("127.0.0.1:5055/x").unwrap();
        assert!(matches!(o.auth(&r).unwrap(), RegistryAuth::Anonymous));
        o.login("127.0.0.1:5055", "me", "pw:with:colons").unwrap();
        assert!(
            matches!(o.auth(&r).unwrap(), RegistryAuth::Basic(u, p) if u == "me" && p == "pw:with:colons")
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "x", "other settings kept");
        std::fs::write(&file, r#"{"auths":{"127.0.0.1:5055":{"auth":"!!"}}}"#).unwrap();
        assert!(matches!(o.auth(&r), Err(ImageError::Credentials { .. })));
    }
}
