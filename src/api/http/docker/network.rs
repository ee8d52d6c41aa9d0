//! Networks: the create body, Docker's network object, list filters.
//!
//! The engine has bridge networks (the default `bridge` one and user-defined ones). Docker
//! also lists `host` and `none`, which are modes rather than networks: they are shown as
//! built-in networks without containers, and cannot be created, removed or connected to.

use super::{Filters, rfc3339_secs};
use crate::api::NetworkInfo;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The names Docker reserves for its built-in networks.
pub(crate) const BUILTIN: &[&str] = &["bridge", "host", "none"];

/// The body of `POST /networks/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CreateBody {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Ipam {
    pub driver: String,
    pub config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct IpamConfig {
    pub subnet: String,
    #[serde(rename = "IPRange")]
    pub ip_range: String,
    pub gateway: String,
}

/// What the engine's `NetworkCreate` takes from a create body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CreateRequest {
    pub name: String,
    pub subnet: Option<String>,
    pub labels: Vec<(String, String)>,
}

/// Check a create body against what berth's networks can be; anything it would have to
/// ignore silently is refused instead.
pub(crate) fn create_request(body: CreateBody) -> Result<CreateRequest, String> {
    if body.name.is_empty() {
        return Err("a network needs a name (Name is empty)".into());
    }
    if BUILTIN.contains(&body.name.as_str()) {
        return Err(format!(
            "{} is a pre-defined network and cannot be created",
            body.name
        ));
    }
    if !matches!(body.driver.as_str(), "" | "bridge") {
        return Err(format!(
            "network driver {:?} is not supported: berth has bridge networks only",
            body.driver
        ));
    }
    let unsupported = [
        (body.internal, "--internal"),
        (body.attachable, "--attachable"),
        (body.ingress, "--ingress"),
        (body.config_only, "--config-only"),
        (body.enable_ipv6 == Some(true), "--ipv6"),
    ];
    if let Some((_, flag)) = unsupported.iter().find(|(on, _)| *on) {
        return Err(format!("{flag} networks are not supported by berth"));
    }
    if let Some(opts) = body.options.as_ref().filter(|o| !o.is_empty()) {
        let keys: Vec<&str> = opts.keys().map(String::as_str).collect();
        return Err(format!(
            "network driver options are not supported by berth ({})",
            keys.join(", ")
        ));
    }
    let ipam = body.ipam.unwrap_or_default();
    if !matches!(ipam.driver.as_str(), "" | "default") {
        return Err(format!("IPAM driver {:?} is not supported", ipam.driver));
    }
    let configs = ipam.config.unwrap_or_default();
    let subnet = match configs.as_slice() {
        [] => None,
        [c] => {
            if !c.ip_range.is_empty() || !c.gateway.is_empty() {
                return Err(
                    "--ip-range and --gateway are not supported: berth gives the \
                            subnet's first address to the gateway"
                        .into(),
                );
            }
            Some(c.subnet.clone()).filter(|s| !s.is_empty())
        }
        _ => return Err("berth networks have one subnet".into()),
    };
    Ok(CreateRequest {
        name: body.name,
        subnet,
        labels: body.labels.unwrap_or_default().into_iter().collect(),
    })
}

/// Docker's object for one of the engine's networks.
pub(crate) fn network_json(n: &NetworkInfo) -> Value {
    let prefix = n.subnet.split_once('/').map_or("", |(_, p)| p);
    let containers: Map<String, Value> = n
        .containers
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                json!({
                    "Name": c.name,
                    "EndpointID": "",
                    "MacAddress": "",
                    "IPv4Address": if prefix.is_empty() { c.ip.clone() } else { format!("{}/{prefix}", c.ip) },
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    let mut options = Map::new();
    if !n.bridge.is_empty() {
        options.insert(
            "com.docker.network.bridge.name".into(),
            Value::String(n.bridge.clone()),
        );
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": rfc3339_secs(Some(n.created)),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{ "Subnet": n.subnet, "Gateway": n.gateway }],
        },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

/// `host` and `none`: modes every container can use, listed as Docker lists them.
pub(crate) fn mode_json(name: &str) -> Value {
    let driver = if name == "none" { "null" } else { name };
    json!({
        "Name": name,
        "Id": name,
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": null, "Config": [] },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {},
    })
}

/// The filters `GET /networks` and `POST /networks/prune` understand.
pub(crate) const LIST_FILTERS: &[&str] =
    &["driver", "id", "label", "name", "scope", "type", "dangling"];

/// Whether a label filter (`key` or `key=value`) holds for `labels`.
pub(crate) fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

/// Whether a network (as Docker's object) passes the list filters. Every `label` filter must
/// hold; the other keys match when one of their values does (Docker's rules).
pub(crate) fn list_matches(n: &Value, f: &Filters) -> Result<bool, String> {
    f.only(LIST_FILTERS)?;
    for t in f.get("type") {
        if !matches!(t.as_str(), "custom" | "builtin") {
            return Err(format!("invalid filter: 'type'='{t}'"));
        }
    }
    let s = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
    let (name, id, driver) = (s("Name"), s("Id"), s("Driver"));
    let labels: BTreeMap<String, String> =
        serde_json::from_value(n["Labels"].clone()).unwrap_or_default();
    let builtin = BUILTIN.contains(&name.as_str());
    let in_use = n["Containers"].as_object().is_some_and(|c| !c.is_empty());
    let mut dangling = Vec::new();
    for d in f.get("dangling") {
        dangling.push(match d.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("invalid filter 'dangling={d}'")),
        });
    }
    Ok(f.any("name", |v| name.contains(v))
        && f.any("id", |v| id.starts_with(v))
        && f.any("driver", |v| v == driver)
        && f.any("scope", |v| v == "local")
        && f.any("type", |v| (v == "builtin") == builtin)
        && f.get("label").iter().all(|l| label_matches(&labels, l))
        // Dangling: a user-defined network without containers.
        && (dangling.is_empty() || dangling.contains(&(!builtin && !in_use))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NetworkEndpoint;

    fn net() -> NetworkInfo {
        NetworkInfo {
            id: "ab".repeat(32),
            name: "backend".into(),
            driver: "bridge".into(),
            subnet: "10.90.0.0/16".into(),
            gateway: "10.90.0.1".into(),
            bridge: "br-abababababab".into(),
            created: 1_700_000_000,
            labels: [("team".to_owned(), "a".to_owned())].into(),
            containers: vec![NetworkEndpoint {
                id: "cd".repeat(32),
                name: "web".into(),
                ip: "10.90.0.2".into(),
            }],
        }
    }

    /// `docker network create --subnet 10.90.0.0/16 --label team=a backend` (CLI 28.2).
    #[test]
    fn the_cli_create_body_becomes_a_create_request() {
        let body: CreateBody = serde_json::from_str(
            r#"{"Name":"backend","Driver":"bridge","Scope":"","EnableIPv6":null,
                "IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.90.0.0/16"}]},
                "Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,
                "ConfigFrom":null,"Options":{},"Labels":{"team":"a"}}"#,
        )
        .unwrap();
        assert_eq!(
            create_request(body).unwrap(),
            CreateRequest {
                name: "backend".into(),
                subnet: Some("10.90.0.0/16".into()),
                labels: vec![("team".into(), "a".into())],
            }
        );
        let plain: CreateBody = serde_json::from_str(r#"{"Name":"n1"}"#).unwrap();
        assert_eq!(create_request(plain).unwrap().subnet, None);
    }

    #[test]
    fn what_berth_networks_cannot_be_is_refused() {
        let refuse = |j: &str| create_request(serde_json::from_str(j).unwrap()).unwrap_err();
        assert!(refuse(r#"{"Name":"x","Driver":"overlay"}"#).contains("overlay"));
        assert!(refuse(r#"{"Name":"x","Internal":true}"#).contains("--internal"));
        assert!(refuse(r#"{"Name":"x","EnableIPv6":true}"#).contains("--ipv6"));
        assert!(refuse(r#"{"Name":"host"}"#).contains("pre-defined"));
        assert!(refuse(r#"{"Name":""}"#).contains("name"));
        assert!(
            refuse(
                r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","Gateway":"10.1.0.9"}]}}"#
            )
            .contains("--gateway")
        );
        assert!(
            refuse(r#"{"Name":"x","Options":{"com.docker.network.bridge.name":"b0"}}"#)
                .contains("com.docker.network.bridge.name")
        );
    }

    #[test]
    fn a_network_in_dockers_shape() {
        let j = network_json(&net());
        assert_eq!(j["Name"], "backend");
        assert_eq!(j["Driver"], "bridge");
        assert_eq!(j["Scope"], "local");
        assert_eq!(j["Created"], "2023-11-14T22:13:20Z");
        assert_eq!(j["IPAM"]["Config"][0]["Subnet"], "10.90.0.0/16");
        assert_eq!(j["IPAM"]["Config"][0]["Gateway"], "10.90.0.1");
        let c = &j["Containers"]["cd".repeat(32)];
        assert_eq!(c["Name"], "web");
        assert_eq!(c["IPv4Address"], "10.90.0.2/16");
        assert_eq!(j["Labels"]["team"], "a");
        assert_eq!(mode_json("none")["Driver"], "null");
    }

    #[test]
    fn list_filters_follow_dockers_rules() {
        let j = network_json(&net());
        let m = |f: &str| list_matches(&j, &Filters::parse(Some(f)).unwrap()).unwrap();
        assert!(m(r#"{"name":{"back":true}}"#));
        assert!(!m(r#"{"name":{"front":true}}"#));
        assert!(m(r#"{"id":{"abab":true}}"#));
        assert!(m(r#"{"driver":{"bridge":true}}"#));
        assert!(m(r#"{"type":{"custom":true}}"#));
        assert!(!m(r#"{"type":{"builtin":true}}"#));
        assert!(m(r#"{"label":{"team=a":true}}"#));
        assert!(!m(r#"{"label":{"team=a":true,"other":true}}"#));
        assert!(!m(r#"{"dangling":{"true":true}}"#), "it has a container");
        assert!(m(r#"{"dangling":{"false":true}}"#));
        let host = mode_json("host");
        assert!(
            list_matches(
                &host,
                &Filters::parse(Some(r#"{"type":{"builtin":true}}"#)).unwrap()
            )
            .unwrap()
        );
        let bad = Filters::parse(Some(r#"{"colour":{"red":true}}"#)).unwrap();
        assert!(list_matches(&j, &bad).is_err());
        let bad = Filters::parse(Some(r#"{"type":{"weird":true}}"#)).unwrap();
        assert!(list_matches(&j, &bad).is_err());
    }
}
