//! Volumes: the create body, Docker's volume object, list and prune filters.

use super::network::label_matches;
use super::{Filters, rfc3339_secs};
use crate::api::VolumeInfo;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The body of `POST /volumes/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CreateBody {
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub cluster_volume_spec: Option<Value>,
}

/// What the engine's `VolumeCreate` takes: the name (generated when `None`) and labels.
type CreateRequest = (Option<String>, Vec<(String, String)>);

pub(crate) fn create_request(body: CreateBody) -> Result<CreateRequest, String> {
    if !matches!(body.driver.as_str(), "" | "local") {
        return Err(format!(
            "volume driver {:?} is not supported: berth has local volumes only",
            body.driver
        ));
    }
    if let Some(o) = body.driver_opts.as_ref().filter(|o| !o.is_empty()) {
        let keys: Vec<&str> = o.keys().map(String::as_str).collect();
        return Err(format!(
            "volume driver options are not supported by berth ({})",
            keys.join(", ")
        ));
    }
    if body
        .cluster_volume_spec
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return Err("cluster volumes are not supported by berth".into());
    }
    Ok((
        Some(body.name).filter(|n| !n.is_empty()),
        body.labels.unwrap_or_default().into_iter().collect(),
    ))
}

/// Anonymous volumes (`-v /data`, an image's `VOLUME`) have a 64-hex generated name.
pub(crate) fn is_anonymous(v: &VolumeInfo) -> bool {
    v.name.len() == 64 && v.name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Docker's volume object.
pub(crate) fn volume_json(v: &VolumeInfo) -> Value {
    let mut labels = v.labels.clone();
    if is_anonymous(v) {
        // How Docker marks them, and how its prune tells them apart.
        labels
            .entry("com.docker.volume.anonymous".into())
            .or_default();
    }
    json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": v.mountpoint,
        "CreatedAt": rfc3339_secs(Some(v.created)),
        "Labels": labels,
        "Scope": "local",
        "Options": {},
    })
}

/// The filters `GET /volumes` understands.
pub(crate) const LIST_FILTERS: &[&str] = &["name", "label", "driver", "dangling"];
/// The filters `POST /volumes/prune` understands.
pub(crate) const PRUNE_FILTERS: &[&str] = &["label", "label!", "all"];

fn boolean(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("invalid filter '{key}={v}'")),
    }
}

/// Whether a volume passes `docker volume ls --filter`s.
pub(crate) fn list_matches(v: &VolumeInfo, f: &Filters) -> Result<bool, String> {
    f.only(LIST_FILTERS)?;
    let dangling = f
        .get("dangling")
        .iter()
        .map(|d| boolean("dangling", d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(f.any("name", |n| v.name.contains(n))
        && f.any("driver", |d| d == v.driver)
        && f.get("label").iter().all(|l| label_matches(&v.labels, l))
        && (dangling.is_empty() || dangling.contains(&v.used_by.is_empty())))
}

/// Whether an unused volume is pruned: anonymous ones only, unless `all=true` (API 1.42 and
/// later; older clients prune every unused volume), and the label filters hold.
pub(crate) fn prune_selects(
    v: &VolumeInfo,
    f: &Filters,
    all_default: bool,
) -> Result<bool, String> {
    f.only(PRUNE_FILTERS)?;
    let mut all = all_default;
    for a in f.get("all") {
        all = boolean("all", a)?;
    }
    Ok(v.used_by.is_empty()
        && (all || is_anonymous(v))
        && f.get("label").iter().all(|l| label_matches(&v.labels, l))
        && !f.get("label!").iter().any(|l| label_matches(&v.labels, l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(name: &str, used: bool) -> VolumeInfo {
        VolumeInfo {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/var/lib/berth/volumes/{name}/_data"),
            created: 1_700_000_000,
            labels: [("team".to_owned(), "a".to_owned())].into(),
            used_by: if used { vec!["web".into()] } else { vec![] },
        }
    }

    #[test]
    fn the_cli_create_body_and_what_is_refused() {
        let b: CreateBody = serde_json::from_str(
            r#"{"Driver":"local","DriverOpts":{},"Labels":{"team":"a"},"Name":"data"}"#,
        )
        .unwrap();
        assert_eq!(
            create_request(b).unwrap(),
            (Some("data".into()), vec![("team".into(), "a".into())])
        );
        let anon: CreateBody = serde_json::from_str(r#"{"Driver":"local"}"#).unwrap();
        assert_eq!(create_request(anon).unwrap().0, None);
        let nfs: CreateBody =
            serde_json::from_str(r#"{"Name":"x","DriverOpts":{"type":"nfs"}}"#).unwrap();
        assert!(create_request(nfs).unwrap_err().contains("type"));
        let other: CreateBody = serde_json::from_str(r#"{"Name":"x","Driver":"rexray"}"#).unwrap();
        assert!(create_request(other).unwrap_err().contains("rexray"));
    }

    #[test]
    fn a_volume_in_dockers_shape() {
        let j = volume_json(&vol("data", false));
        assert_eq!(j["Name"], "data");
        assert_eq!(j["Driver"], "local");
        assert_eq!(j["Scope"], "local");
        assert_eq!(j["CreatedAt"], "2023-11-14T22:13:20Z");
        assert_eq!(j["Mountpoint"], "/var/lib/berth/volumes/data/_data");
        assert!(j["Labels"].get("com.docker.volume.anonymous").is_none());
        let a = volume_json(&vol(&"e".repeat(64), false));
        assert_eq!(a["Labels"]["com.docker.volume.anonymous"], "");
    }

    #[test]
    fn list_and_prune_filters() {
        let f = |s: &str| Filters::parse(Some(s)).unwrap();
        let (free, used) = (vol("data", false), vol("db", true));
        assert!(list_matches(&free, &f(r#"{"dangling":{"true":true}}"#)).unwrap());
        assert!(!list_matches(&used, &f(r#"{"dangling":{"true":true}}"#)).unwrap());
        assert!(list_matches(&used, &f(r#"{"name":{"d":true}}"#)).unwrap());
        assert!(!list_matches(&used, &f(r#"{"label":{"team=b":true}}"#)).unwrap());
        assert!(list_matches(&free, &f(r#"{"colour":{"x":true}}"#)).is_err());

        let anon = vol(&"e".repeat(64), false);
        let none = Filters::default();
        assert!(prune_selects(&anon, &none, false).unwrap());
        assert!(
            !prune_selects(&free, &none, false).unwrap(),
            "named: only with all"
        );
        assert!(prune_selects(&free, &f(r#"{"all":{"true":true}}"#), false).unwrap());
        assert!(
            prune_selects(&free, &none, true).unwrap(),
            "old clients prune all"
        );
        assert!(!prune_selects(&used, &f(r#"{"all":{"true":true}}"#), false).unwrap());
        assert!(!prune_selects(&anon, &f(r#"{"label!":{"team":true}}"#), false).unwrap());
    }
}
