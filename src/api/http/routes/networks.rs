//! `/networks/...`: the engine's bridge networks, plus Docker's built-in `host` and `none`.

use super::{AppState, Params, json_body, unexpected};
use crate::api::dispatch::Caller;
use crate::api::http::docker::network::{
    self as dn, BUILTIN, CreateBody, create_request, list_matches, mode_json, network_json,
};
use crate::api::http::docker::parse_time_param;
use crate::api::http::error::{HttpError, HttpResult};
use crate::api::{ApiError, Command, ContainerId, NetworkInfo, Reply};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect))
        .route("/networks/{id}", delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

/// The engine reports an unknown network as a bad argument; Docker answers 404, in its words.
pub(super) fn network_error(e: ApiError) -> HttpError {
    match &e {
        ApiError::InvalidArgument(m) if m.starts_with("no such network: ") => {
            let name = m.trim_start_matches("no such network: ");
            HttpError::not_found(format!("network {name} not found"))
        }
        _ => e.into(),
    }
}

fn is_mode(name: &str) -> bool {
    matches!(name, "host" | "none")
}

async fn networks(st: &AppState, caller: &Caller) -> HttpResult<Vec<NetworkInfo>> {
    match st
        .engine
        .submit_as(caller, Command::NetworkList)
        .await
        .map_err(network_error)?
    {
        Reply::Networks(l) => Ok(l),
        other => Err(unexpected("network list", &other)),
    }
}

async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Json<Value>> {
    let filters = q.filters()?;
    filters
        .only(dn::LIST_FILTERS)
        .map_err(HttpError::bad_request)?;
    let mut all: Vec<Value> = networks(&st, &caller)
        .await?
        .iter()
        .map(network_json)
        .collect();
    all.extend(["host", "none"].map(mode_json));
    let mut out = Vec::new();
    for n in all {
        if list_matches(&n, &filters).map_err(HttpError::bad_request)? {
            // The list does not show endpoints (Docker fills them only on inspect).
            let mut n = n;
            n["Containers"] = json!({});
            out.push(n);
        }
    }
    Ok(Json(Value::Array(out)))
}

async fn inspect(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> HttpResult<Json<Value>> {
    if is_mode(&id) {
        // Still asks the engine, so the policy decides whether networks may be read.
        networks(&st, &caller).await?;
        return Ok(Json(mode_json(&id)));
    }
    match st
        .engine
        .submit_as(&caller, Command::NetworkInspect { name: id })
        .await
        .map_err(network_error)?
    {
        Reply::Network(n) => Ok(Json(network_json(&n))),
        other => Err(unexpected("network inspect", &other)),
    }
}

async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> HttpResult<Response> {
    let body: CreateBody = json_body(&body)?;
    let req = create_request(body).map_err(HttpError::bad_request)?;
    let cmd = Command::NetworkCreate {
        name: req.name,
        subnet: req.subnet,
        labels: req.labels,
    };
    match st
        .engine
        .submit_as(&caller, cmd)
        .await
        .map_err(network_error)?
    {
        Reply::Network(n) => Ok((
            StatusCode::CREATED,
            Json(json!({ "Id": n.id, "Warning": "" })),
        )
            .into_response()),
        other => Err(unexpected("network create", &other)),
    }
}

fn predefined(name: &str) -> HttpError {
    HttpError::new(
        StatusCode::FORBIDDEN,
        format!("{name} is a pre-defined network and cannot be removed"),
    )
}

async fn remove(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    if BUILTIN.contains(&id.as_str()) {
        return Err(predefined(&id));
    }
    match st
        .engine
        .submit_as(&caller, Command::NetworkRemove { name: id })
        .await
        .map_err(network_error)?
    {
        Reply::Done => Ok(StatusCode::NO_CONTENT.into_response()),
        other => Err(unexpected("network remove", &other)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointConfig>,
    /// Disconnect only; the engine's disconnect works on stopped and running containers alike.
    #[allow(dead_code)]
    force: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointConfig {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<Value>,
    links: Option<Vec<String>>,
}

async fn connect_or_disconnect(
    st: AppState,
    caller: Caller,
    id: String,
    body: Bytes,
    connect: bool,
) -> HttpResult<Response> {
    let body: ConnectBody = json_body(&body)?;
    if body.container.is_empty() {
        return Err(HttpError::bad_request(
            "no container was given (Container is empty)",
        ));
    }
    if let Some(ep) = &body.endpoint_config {
        let addresses = ep.ipam_config.as_ref().is_some_and(|v| {
            v.as_object().is_some_and(|o| {
                o.values()
                    .any(|x| !x.is_null() && x != "" && x != &json!([]))
            })
        });
        if ep.aliases.as_ref().is_some_and(|a| !a.is_empty())
            || ep.links.as_ref().is_some_and(|l| !l.is_empty())
            || addresses
        {
            return Err(HttpError::new(
                StatusCode::NOT_IMPLEMENTED,
                "berth cannot give aliases, links or fixed addresses when connecting a container \
                 to a network; use --network-alias when creating it",
            ));
        }
    }
    if is_mode(&id) || (id == "bridge" && connect) {
        return Err(HttpError::bad_request(format!(
            "a running container cannot be connected to the built-in {id} network by berth"
        )));
    }
    let network = id;
    let container = ContainerId(body.container);
    let cmd = if connect {
        Command::NetworkConnect { network, container }
    } else {
        Command::NetworkDisconnect { network, container }
    };
    match st
        .engine
        .submit_as(&caller, cmd)
        .await
        .map_err(network_error)?
    {
        Reply::Done => Ok(StatusCode::OK.into_response()),
        other => Err(unexpected("network connect", &other)),
    }
}

async fn connect(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> HttpResult<Response> {
    connect_or_disconnect(st, caller, id, body, true).await
}

async fn disconnect(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> HttpResult<Response> {
    connect_or_disconnect(st, caller, id, body, false).await
}

/// `POST /networks/prune`: remove every user-defined network without containers that the
/// filters (`label`, `label!`, `until`) select, one `NetworkRemove` each (so the policy's
/// `network.remove` rules apply). A network that gained a container meanwhile is kept.
async fn prune(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Json<Value>> {
    let filters = q.filters()?;
    filters
        .only(&["label", "label!", "until"])
        .map_err(HttpError::bad_request)?;
    let mut until = None;
    for u in filters.get("until") {
        let nanos = parse_time_param(u).map_err(HttpError::bad_request)?;
        until = Some(nanos / 1_000_000_000);
    }
    let mut deleted = Vec::new();
    for n in networks(&st, &caller).await? {
        let chosen = !BUILTIN.contains(&n.name.as_str())
            && n.containers.is_empty()
            && until.is_none_or(|u| n.created < u)
            && filters
                .get("label")
                .iter()
                .all(|l| dn::label_matches(&n.labels, l))
            && !filters
                .get("label!")
                .iter()
                .any(|l| dn::label_matches(&n.labels, l));
        if !chosen {
            continue;
        }
        match st
            .engine
            .submit_as(&caller, Command::NetworkRemove { name: n.id.clone() })
            .await
        {
            Ok(_) => deleted.push(n.name),
            // In use by now, or removed by someone else: not pruned by us.
            Err(ApiError::Conflict(_)) => {}
            Err(ApiError::InvalidArgument(m)) if m.starts_with("no such network") => {}
            Err(e) => return Err(network_error(e)),
        }
    }
    Ok(Json(json!({ "NetworksDeleted": deleted })))
}
