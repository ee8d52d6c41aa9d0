//! berth's own protocol (`crate::api::wire`): what `berth --host unix://…` speaks.

use super::AppState;
use crate::api::dispatch::Caller;
use crate::api::http::error::{HttpError, HttpResult, status_of};
use crate::api::http::stream;
use crate::api::wire::{REPLY_HEADER, TTY_HEADER, WireCommand, WireError, WireReply};
use crate::api::{ApiError, Command, Reply};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

fn error(e: ApiError) -> Response {
    (status_of(&e), Json(WireError::from(&e))).into_response()
}

fn tagged(mut r: Response, kind: &'static str) -> Response {
    r.headers_mut()
        .insert(REPLY_HEADER, HeaderValue::from_static(kind));
    r
}

/// `POST /berth/v1/command`: run one command for the connecting user.
pub(super) async fn command(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    mut req: Request,
) -> Response {
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let upgrade = stream::wants_upgrade(req.headers());
    let body = match axum::body::to_bytes(req.into_body(), 16 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return HttpError::bad_request(format!("reading the command: {e}")).into_response();
        }
    };
    let wire: WireCommand = match serde_json::from_slice(&body) {
        Ok(w) => w,
        Err(e) => return HttpError::bad_request(format!("malformed command: {e}")).into_response(),
    };
    // The subject is always the connection's peer; the client may only add its confirmation.
    let caller = Caller {
        confirmed: wire.confirmed,
        ..caller
    };
    let reply = match st.engine.submit_as(&caller, wire.command).await {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let streaming = match WireReply::from_reply(reply) {
        Ok(value) => return tagged(Json(value).into_response(), "value"),
        Err(r) => *r,
    };
    match streaming {
        Reply::Logs(rx) => tagged(
            stream::json_lines(futures_util::StreamExt::map(
                stream::from_receiver(rx),
                |l| serde_json::to_value(l).unwrap_or_default(),
            )),
            "logs",
        ),
        Reply::Stats(rx) => tagged(
            stream::json_lines(futures_util::StreamExt::map(
                stream::from_receiver(rx),
                |s| serde_json::to_value(s).unwrap_or_default(),
            )),
            "stats",
        ),
        Reply::Io(session) => {
            if !upgrade {
                return HttpError::bad_request("a stdio session needs Connection: Upgrade")
                    .into_response();
            }
            let tty = session.tty;
            let Some(on) = on_upgrade else {
                return HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "this connection cannot be upgraded",
                )
                .into_response();
            };
            stream::spawn_hijack(on, session);
            let mut r = tagged(
                stream::upgraded_response("application/vnd.docker.multiplexed-stream"),
                "io",
            );
            r.headers_mut().insert(
                TTY_HEADER,
                HeaderValue::from_static(if tty { "1" } else { "0" }),
            );
            r
        }
        other => error(ApiError::engine(
            "answering",
            format!("unexpected reply {other:?}"),
        )),
    }
}

/// `GET /berth/v1/events`: every event from now on, as JSON lines. Following needs the right
/// to read the engine's facts, as for the Docker route.
pub(super) async fn events(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> HttpResult<Response> {
    st.submit(&caller, Command::SystemInfo).await?;
    let mut rx = st
        .engine
        .subscribe()
        .map_err(|e| HttpError::from(ApiError::engine("following events", e)))?;
    let (tx, out) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(rec) => {
                    if tx
                        .send(serde_json::to_value(&rec).unwrap_or_default())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
    Ok(stream::json_lines(stream::from_receiver(out)))
}
