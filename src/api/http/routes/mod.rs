//! The routes, one file per object kind. Every handler builds a [`Command`] and submits it as
//! the connection's [`Caller`]; the dispatcher checks the policy and audits.

mod berth;
pub(super) mod containers;
mod events;
mod exec;
mod images;
mod misc;
mod networks;
pub(super) mod system;
mod volumes;

use super::docker::system::HostFacts;
use super::error::{HttpError, HttpResult};
use crate::api::dispatch::{Caller, version_info};
use crate::api::{Command, Engine, Reply};
use axum::Router;
use axum::routing::{get, post};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub engine: Engine,
    pub host: Arc<HostFacts>,
}

impl AppState {
    pub async fn submit(&self, caller: &Caller, cmd: Command) -> HttpResult<Reply> {
        self.engine
            .submit_as(caller, cmd)
            .await
            .map_err(HttpError::from)
    }
}

/// A command whose answer is streamed after a 200, once started.
pub(crate) enum Begun {
    /// It finished (or was refused) at once: answer with its result, status and all.
    Finished(Result<Reply, crate::api::ApiError>),
    /// It is under way; its errors can only go into the stream now.
    Running(Pin<Box<dyn Future<Output = Result<Reply, crate::api::ApiError>> + Send>>),
}

impl AppState {
    /// Start a command and poll it once. The dispatcher decides on the policy before its
    /// first await, so a refusal is known here and can still be a 403 rather than an error
    /// line inside a 200 stream.
    pub async fn begin(&self, caller: &Caller, cmd: Command) -> Begun {
        let engine = self.engine.clone();
        let caller = caller.clone();
        let mut fut = Box::pin(async move { engine.submit_as(&caller, cmd).await });
        match futures_util::poll!(fut.as_mut()) {
            std::task::Poll::Ready(r) => Begun::Finished(r),
            std::task::Poll::Pending => Begun::Running(fut),
        }
    }
}

/// A reply of an unexpected kind: the dispatcher and this server disagree.
/// A JSON request body; an empty one is the type's default (clients send none for defaults).
pub(crate) fn json_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> HttpResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| HttpError::bad_request(format!("invalid JSON body: {e}")))
}

pub(crate) fn unexpected(what: &str, got: &Reply) -> HttpError {
    let kind = format!("{got:?}");
    let kind = kind.split(['(', ' ', '{']).next().unwrap_or_default();
    HttpError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        format!("the engine answered {what} with an unexpected {kind} reply"),
    )
}

/// Query parameters, keeping repeated keys (`names=a&names=b`).
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn flag(&self, k: &str) -> bool {
        super::docker::truthy(self.get(k))
    }

    /// A flag that defaults to true when absent (`stream`, `stdout`…).
    pub fn flag_or(&self, k: &str, default: bool) -> bool {
        match self.get(k) {
            None => default,
            v => super::docker::truthy(v),
        }
    }

    pub fn number<T: std::str::FromStr>(&self, k: &str) -> HttpResult<Option<T>> {
        match self.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| HttpError::bad_request(format!("invalid {k}={v}: not a number"))),
        }
    }

    pub fn filters(&self) -> HttpResult<super::docker::Filters> {
        super::docker::Filters::parse(self.get("filters")).map_err(HttpError::bad_request)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = HttpError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, HttpError> {
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| HttpError::bad_request(format!("bad query string: {e}")))
    }
}

pub(crate) fn router(engine: Engine) -> Router {
    let state = AppState {
        engine,
        host: Arc::new(HostFacts::read(&version_info())),
    };
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(events::events))
        .route("/system/df", get(system::disk_usage))
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(images::routes())
        .merge(networks::routes())
        .merge(volumes::routes())
        .merge(misc::routes())
        .route("/build", post(images::build))
        .route(crate::api::wire::COMMAND_PATH, post(berth::command))
        .route(crate::api::wire::EVENTS_PATH, get(berth::events))
        .fallback(misc::not_found)
        .with_state(state)
}
