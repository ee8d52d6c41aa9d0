//! `/volumes/...`: the engine's local named volumes.

use super::{AppState, Params, json_body, unexpected};
use crate::api::dispatch::Caller;
use crate::api::http::docker::volume::{
    self as dv, CreateBody, create_request, list_matches, prune_selects, volume_json,
};
use crate::api::http::error::{HttpError, HttpResult};
use crate::api::http::version::ApiVersion;
use crate::api::{ApiError, Command, Reply, VolumeInfo};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

fn is_missing(e: &ApiError) -> bool {
    matches!(e, ApiError::InvalidArgument(m) if m.starts_with("no such volume"))
}

/// The engine reports an unknown volume as a bad argument; Docker answers 404.
fn volume_error(e: ApiError) -> HttpError {
    match &e {
        ApiError::InvalidArgument(m) if is_missing(&e) => HttpError::not_found(format!(
            "get {}: no such volume",
            m.trim_start_matches("no such volume: ")
        )),
        _ => e.into(),
    }
}

async fn volumes(st: &AppState, caller: &Caller) -> HttpResult<Vec<VolumeInfo>> {
    match st
        .engine
        .submit_as(caller, Command::VolumeList)
        .await
        .map_err(volume_error)?
    {
        Reply::Volumes(l) => Ok(l),
        other => Err(unexpected("volume list", &other)),
    }
}

async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Json<Value>> {
    let filters = q.filters()?;
    filters
        .only(dv::LIST_FILTERS)
        .map_err(HttpError::bad_request)?;
    let mut out = Vec::new();
    for v in volumes(&st, &caller).await? {
        if list_matches(&v, &filters).map_err(HttpError::bad_request)? {
            out.push(volume_json(&v));
        }
    }
    Ok(Json(json!({ "Volumes": out, "Warnings": [] })))
}

async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> HttpResult<Response> {
    let body: CreateBody = json_body(&body)?;
    let (name, labels) = create_request(body).map_err(HttpError::bad_request)?;
    match st
        .engine
        .submit_as(&caller, Command::VolumeCreate { name, labels })
        .await
        .map_err(volume_error)?
    {
        Reply::Volume(v) => Ok((StatusCode::CREATED, Json(volume_json(&v))).into_response()),
        other => Err(unexpected("volume create", &other)),
    }
}

async fn inspect(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> HttpResult<Json<Value>> {
    match st
        .engine
        .submit_as(&caller, Command::VolumeInspect { name })
        .await
        .map_err(volume_error)?
    {
        Reply::Volume(v) => Ok(Json(volume_json(&v))),
        other => Err(unexpected("volume inspect", &other)),
    }
}

/// `DELETE /volumes/{name}`; with `force`, a volume that does not exist is not an error. A
/// volume in use is refused either way (as Docker does).
async fn remove(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    match st
        .engine
        .submit_as(&caller, Command::VolumeRemove { name })
        .await
    {
        Ok(Reply::Done) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(other) => Err(unexpected("volume remove", &other)),
        Err(e) if is_missing(&e) && q.flag("force") => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(volume_error(e)),
    }
}

/// `POST /volumes/prune`. Every unused volume (`all=true`, or a client older than API 1.42)
/// without label filters is the engine's `VolumePrune`, which also reports the space freed;
/// any other selection (Docker's default: anonymous volumes only) is removed one
/// `VolumeRemove` at a time, and its space is not measured (reported as 0).
async fn prune(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(version): Extension<ApiVersion>,
    q: Params,
) -> HttpResult<Json<Value>> {
    let filters = q.filters()?;
    filters
        .only(dv::PRUNE_FILTERS)
        .map_err(HttpError::bad_request)?;
    let all_default = version < ApiVersion(1, 42);
    let every_unused = filters.get("label").is_empty()
        && filters.get("label!").is_empty()
        && filters
            .get("all")
            .last()
            .map_or(all_default, |a| matches!(a.as_str(), "true" | "1"));
    if every_unused {
        return match st
            .engine
            .submit_as(&caller, Command::VolumePrune)
            .await
            .map_err(volume_error)?
        {
            Reply::Pruned { removed, freed } => Ok(Json(json!({
                "VolumesDeleted": removed,
                "SpaceReclaimed": freed,
            }))),
            other => Err(unexpected("volume prune", &other)),
        };
    }
    let mut deleted = Vec::new();
    for v in volumes(&st, &caller).await? {
        if !prune_selects(&v, &filters, all_default).map_err(HttpError::bad_request)? {
            continue;
        }
        match st
            .engine
            .submit_as(
                &caller,
                Command::VolumeRemove {
                    name: v.name.clone(),
                },
            )
            .await
        {
            Ok(_) => deleted.push(v.name),
            // Used by a container created meanwhile, or already gone.
            Err(ApiError::Conflict(_)) => {}
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(volume_error(e)),
        }
    }
    Ok(Json(
        json!({ "VolumesDeleted": deleted, "SpaceReclaimed": 0 }),
    ))
}
