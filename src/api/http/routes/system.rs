//! `/_ping`, `/version`, `/info`.

use super::{AppState, unexpected};
use crate::api::Command;
use crate::api::Reply;
use crate::api::dispatch::Caller;
use crate::api::http::docker::system;
use crate::api::http::error::HttpResult;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The client's first request: the API version is in the headers (added to every answer), so
/// ping needs no policy decision. HEAD gets the same headers and no body.
pub(crate) async fn ping(method: Method) -> Response {
    let mut r = if method == Method::HEAD {
        ().into_response()
    } else {
        "OK".into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    r
}

pub(super) async fn version(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> HttpResult<Json<Value>> {
    match st.submit(&caller, Command::SystemVersion).await? {
        Reply::Version(v) => Ok(Json(system::version(&v))),
        other => Err(unexpected("version", &other)),
    }
}

pub(super) async fn info(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> HttpResult<Json<Value>> {
    match st.submit(&caller, Command::SystemInfo).await? {
        Reply::Info(i) => Ok(Json(system::info(&i, &st.host))),
        other => Err(unexpected("info", &other)),
    }
}

/// `GET /system/df`: what images and containers take, from the engine's lists.
pub(super) async fn disk_usage(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> HttpResult<Json<Value>> {
    let images = match st.submit(&caller, Command::ImageList).await? {
        Reply::Images(l) => l,
        other => return Err(unexpected("image list", &other)),
    };
    let containers = match st
        .submit(&caller, Command::ContainerList { all: true })
        .await?
    {
        Reply::Containers(l) => l,
        other => return Err(unexpected("container list", &other)),
    };
    Ok(Json(system::disk_usage(
        &images,
        &containers,
        crate::api::http::docker::now_secs(),
    )))
}
