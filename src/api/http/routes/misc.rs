//! Object kinds the engine does not have (yet): networks and volumes answer as far as the
//! engine has them, and unknown objects are 404 JSON, so `docker inspect`'s fallback chain
//! (container → image → network → volume → plugin) ends in "No such object".

use super::AppState;
use crate::api::http::error::HttpError;
use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use serde_json::{Value, json};

/// The network modes every container can use; the engine has no user-defined networks.
const NETWORKS: &[(&str, &str)] = &[("bridge", "bridge"), ("host", "host"), ("none", "null")];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(networks))
        .route("/networks/{id}", get(network))
        .route("/volumes", get(volumes))
        .route("/volumes/{name}", get(volume))
        .route("/plugins", get(plugins))
        .route("/plugins/{*name}", get(plugin))
}

fn network_json(name: &str, driver: &str) -> Value {
    json!({
        "Name": name,
        "Id": name,
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": driver,
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

async fn networks() -> Json<Value> {
    Json(NETWORKS.iter().map(|(n, d)| network_json(n, d)).collect())
}

async fn network(Path(id): Path<String>) -> Result<Json<Value>, HttpError> {
    NETWORKS
        .iter()
        .find(|(n, _)| *n == id)
        .map(|(n, d)| Json(network_json(n, d)))
        .ok_or_else(|| HttpError::not_found(format!("network {id} not found")))
}

async fn volumes() -> HttpError {
    HttpError::new(
        StatusCode::NOT_IMPLEMENTED,
        "listing volumes is not yet supported by this build of berth",
    )
}

async fn volume(Path(name): Path<String>) -> HttpError {
    HttpError::not_found(format!("get {name}: no such volume"))
}

async fn plugins() -> Json<Value> {
    Json(json!([]))
}

async fn plugin(Path(name): Path<String>) -> HttpError {
    let name = name.strip_suffix("/json").unwrap_or(&name).to_owned();
    HttpError::not_found(format!("plugin \"{name}\" not found"))
}

pub(super) async fn not_found(uri: Uri) -> HttpError {
    HttpError::not_found(format!("page not found: {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_objects_are_404_and_builtin_networks_are_found() {
        assert_eq!(volume(Path("x".into())).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            plugin(Path("x/json".into())).await.message,
            "plugin \"x\" not found"
        );
        assert_eq!(
            network(Path("nosuch".into())).await.unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            network(Path("host".into())).await.unwrap().0["Driver"],
            "host"
        );
        assert_eq!(networks().await.0.as_array().unwrap().len(), 3);
    }
}
