//! `/exec/{id}/...`.

use super::containers::size_params;
use super::{AppState, Params, unexpected};
use crate::api::dispatch::Caller;
use crate::api::http::docker::exec::{ExecStartBody, exec_inspect};
use crate::api::http::error::{HttpError, HttpResult};
use crate::api::http::stream;
use crate::api::http::version::ApiVersion;
use crate::api::{Command, Reply};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::Value;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

async fn start(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(version): Extension<ApiVersion>,
    Path(exec_id): Path<String>,
    mut req: Request,
) -> HttpResult<Response> {
    let upgrade = stream::wants_upgrade(req.headers());
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    // The JSON body comes before the connection is taken over.
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| HttpError::bad_request(format!("reading the body: {e}")))?;
    let parsed: ExecStartBody = super::json_body(&body)?;
    let cmd = Command::ExecStart {
        exec_id,
        detach: parsed.detach,
        console_size: parsed.console_size(),
    };
    let session = match st.submit(&caller, cmd).await? {
        Reply::Done if parsed.detach => return Ok(StatusCode::OK.into_response()),
        Reply::Io(s) => s,
        other => return Err(unexpected("exec start", &other)),
    };
    Ok(stream::session_response(
        session, on_upgrade, upgrade, version,
    ))
}

async fn resize(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(exec_id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let (height, width) = size_params(&q)?;
    match st
        .submit(
            &caller,
            Command::ExecResize {
                exec_id,
                height,
                width,
            },
        )
        .await?
    {
        Reply::Done => Ok(StatusCode::OK.into_response()),
        other => Err(unexpected("exec resize", &other)),
    }
}

async fn inspect(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(exec_id): Path<String>,
) -> HttpResult<Json<Value>> {
    match st.submit(&caller, Command::ExecInspect { exec_id }).await? {
        Reply::Exec(info) => Ok(Json(exec_inspect(&info))),
        other => Err(unexpected("exec inspect", &other)),
    }
}
