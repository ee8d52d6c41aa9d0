//! `/containers/...`.

use super::{AppState, Begun, Params, json_body, unexpected};
use crate::api::dispatch::Caller;
use crate::api::http::docker::container::{
    self as dc, CreateBody, config_from_create, list_item, list_matches, list_wants_all,
};
use crate::api::http::docker::exec::{ExecCreateBody, exec_config};
use crate::api::http::docker::stats::stats_json;
use crate::api::http::docker::{now_secs, parse_time_param, rfc3339_nanos};
use crate::api::http::error::{HttpError, HttpResult};
use crate::api::http::stream::{self, FrameKind};
use crate::api::http::version::ApiVersion;
use crate::api::{Command, ContainerId, LogLine, LogOptions, Reply, WaitCondition};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/exec", post(exec_create))
        .route("/containers/{id}", delete(remove))
}

fn cid(id: String) -> ContainerId {
    ContainerId(id)
}

/// 204 No Content, for the commands that answer nothing.
fn done(reply: Reply, what: &str) -> HttpResult<Response> {
    match reply {
        Reply::Done | Reply::ContainerId(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        other => Err(unexpected(what, &other)),
    }
}

async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Json<Value>> {
    let filters = q.filters()?;
    // Checked up front: with nothing to list, a bad filter would otherwise pass unnoticed.
    filters
        .only(dc::LIST_FILTERS)
        .map_err(HttpError::bad_request)?;
    let all = list_wants_all(q.flag("all"), &filters);
    let mut list = match st.submit(&caller, Command::ContainerList { all }).await? {
        Reply::Containers(l) => l,
        other => return Err(unexpected("container list", &other)),
    };
    let mut keep = Vec::with_capacity(list.len());
    for c in list.drain(..) {
        if list_matches(&c, &filters).map_err(HttpError::bad_request)? {
            keep.push(c);
        }
    }
    keep.sort_by_key(|c| std::cmp::Reverse(c.created));
    if let Some(n) = q.number::<i64>("limit")?.filter(|n| *n > 0) {
        keep.truncate(n as usize);
    }
    let now = now_secs();
    Ok(Json(keep.iter().map(|c| list_item(c, now)).collect()))
}

async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
    body: Bytes,
) -> HttpResult<Response> {
    let parsed: CreateBody = json_body(&body)?;
    let (config, warnings) = config_from_create(
        parsed,
        q.get("name").map(str::to_owned),
        q.get("platform").map(str::to_owned),
    )
    .map_err(HttpError::bad_request)?;
    // The API never pulls on create: a 404 makes the CLI pull, then create again.
    let cmd = Command::ContainerCreate {
        config: Box::new(config),
        pull: false,
    };
    match st.submit(&caller, cmd).await? {
        Reply::ContainerId(id) => Ok((
            StatusCode::CREATED,
            Json(json!({ "Id": id, "Warnings": warnings })),
        )
            .into_response()),
        other => Err(unexpected("create", &other)),
    }
}

/// The container in Docker's inspect shape.
async fn inspect_json(st: &AppState, caller: &Caller, id: &str) -> HttpResult<Value> {
    match st
        .submit(
            caller,
            Command::ContainerInspect {
                id: cid(id.to_owned()),
            },
        )
        .await?
    {
        Reply::Json(v) => {
            dc::inspect(v).map_err(|m| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, m))
        }
        other => Err(unexpected("inspect", &other)),
    }
}

async fn inspect(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> HttpResult<Json<Value>> {
    inspect_json(&st, &caller, &id).await.map(Json)
}

async fn start(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    done(
        st.submit(&caller, Command::ContainerStart { id: cid(id) })
            .await?,
        "start",
    )
}

async fn stop(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let timeout = q
        .number::<i64>("t")?
        .map(|t| t.clamp(0, u32::MAX as i64) as u32);
    done(
        st.submit(
            &caller,
            Command::ContainerStop {
                id: cid(id),
                timeout,
            },
        )
        .await?,
        "stop",
    )
}

async fn restart(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let timeout = q
        .number::<i64>("t")?
        .map(|t| t.clamp(0, u32::MAX as i64) as u32);
    done(
        st.submit(
            &caller,
            Command::ContainerRestart {
                id: cid(id),
                timeout,
            },
        )
        .await?,
        "restart",
    )
}

async fn kill(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let signal = q
        .get("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("KILL")
        .to_owned();
    done(
        st.submit(
            &caller,
            Command::ContainerKill {
                id: cid(id),
                signal,
            },
        )
        .await?,
        "kill",
    )
}

async fn pause(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    done(
        st.submit(&caller, Command::ContainerPause { id: cid(id) })
            .await?,
        "pause",
    )
}

async fn unpause(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    done(
        st.submit(&caller, Command::ContainerUnpause { id: cid(id) })
            .await?,
        "unpause",
    )
}

async fn rename(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| HttpError::bad_request("a new name is required (name=)"))?
        .trim_start_matches('/')
        .to_owned();
    done(
        st.submit(&caller, Command::ContainerRename { id: cid(id), name })
            .await?,
        "rename",
    )
}

async fn remove(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    if q.flag("link") {
        return Err(HttpError::bad_request(
            "berth has no container links to remove",
        ));
    }
    let force = q.flag("force");
    done(
        st.submit(&caller, Command::ContainerRemove { id: cid(id), force })
            .await?,
        "remove",
    )
}

async fn prune(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Json<Value>> {
    if !q.filters()?.0.is_empty() {
        return Err(HttpError::bad_request(
            "prune filters (until, label) are not supported by berth",
        ));
    }
    match st.submit(&caller, Command::ContainerPrune).await? {
        Reply::Pruned { removed, freed } => Ok(Json(
            json!({ "ContainersDeleted": removed, "SpaceReclaimed": freed }),
        )),
        other => Err(unexpected("prune", &other)),
    }
}

pub(super) fn wait_condition(s: Option<&str>) -> HttpResult<WaitCondition> {
    match s.unwrap_or_default() {
        "" | "not-running" => Ok(WaitCondition::NotRunning),
        "next-exit" => Ok(WaitCondition::NextExit),
        "removed" => Ok(WaitCondition::Removed),
        other => Err(HttpError::bad_request(format!(
            "invalid condition {other:?} (expected not-running, next-exit or removed)"
        ))),
    }
}

/// The body of a wait answer.
pub(crate) fn wait_body(result: Result<i32, String>) -> Value {
    match result {
        Ok(code) => json!({ "StatusCode": code, "Error": null }),
        Err(message) => json!({ "StatusCode": -1, "Error": { "Message": message } }),
    }
}

/// 200 and the headers at once (the CLI registers the wait before it starts the container),
/// the body when the condition holds.
async fn wait(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let condition = wait_condition(q.get("condition"))?;
    // An unknown container is a 404 before the 200 (the wait itself can only report in the
    // body once the headers are out).
    if let Err(e) = inspect_json(&st, &caller, &id).await
        && e.status == StatusCode::NOT_FOUND
    {
        return Err(e);
    }
    let cmd = Command::ContainerWait {
        id: cid(id),
        condition,
    };
    // A refusal by the policy is decided on the first poll: a 403, not an error in the body.
    let fut = match st.begin(&caller, cmd).await {
        Begun::Finished(Err(e)) => return Err(e.into()),
        Begun::Finished(Ok(reply)) => Box::pin(std::future::ready(Ok(reply))) as _,
        Begun::Running(f) => f,
    };
    Ok(wait_response(async move {
        match fut.await {
            Ok(Reply::ExitCode(code)) => Ok(code),
            Ok(other) => Err(unexpected("wait", &other).message),
            Err(e) => Err(e.to_string()),
        }
    }))
}

/// 200 with the headers flushed now; the body once `result` is known.
pub(crate) fn wait_response(
    result: impl std::future::Future<Output = Result<i32, String>> + Send + 'static,
) -> Response {
    stream::json_lines(futures_util::stream::once(async move {
        wait_body(result.await)
    }))
}

async fn attach(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(version): Extension<ApiVersion>,
    Path(id): Path<String>,
    q: Params,
    mut req: Request,
) -> HttpResult<Response> {
    let upgrade = stream::wants_upgrade(req.headers());
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let stdin = q.flag("stdin") && upgrade;
    let session = match st
        .submit(&caller, Command::ContainerAttach { id: cid(id), stdin })
        .await?
    {
        Reply::Io(s) => s,
        other => return Err(unexpected("attach", &other)),
    };
    // Docker defaults both to false, but a client that names neither wants the output.
    let (out, err) = match (q.get("stdout"), q.get("stderr")) {
        (None, None) => (true, true),
        _ => (q.flag("stdout"), q.flag("stderr")),
    };
    let session = stream::only_streams(session, out, err);
    Ok(stream::session_response(
        session, on_upgrade, upgrade, version,
    ))
}

pub(super) fn size_params(q: &Params) -> HttpResult<(u16, u16)> {
    let h = q.number::<u16>("h")?;
    let w = q.number::<u16>("w")?;
    match (h, w) {
        (Some(h), Some(w)) => Ok((h, w)),
        _ => Err(HttpError::bad_request("h and w are required")),
    }
}

async fn resize(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let (height, width) = size_params(&q)?;
    match st
        .submit(
            &caller,
            Command::ContainerResize {
                id: cid(id),
                height,
                width,
            },
        )
        .await?
    {
        Reply::Done => Ok(StatusCode::OK.into_response()),
        other => Err(unexpected("resize", &other)),
    }
}

/// A log line on the wire: the line, its newline, the timestamp first when asked for.
pub(crate) fn log_bytes(l: &LogLine, timestamps: bool, tty: bool) -> Bytes {
    let mut text = String::with_capacity(l.line.len() + 40);
    if timestamps {
        text.push_str(&rfc3339_nanos(l.time));
        text.push(' ');
    }
    text.push_str(&l.line);
    text.push('\n');
    if tty {
        Bytes::from(text)
    } else {
        stream::frame(FrameKind::from(l.stream), text.as_bytes())
    }
}

pub(super) fn log_options(q: &Params) -> HttpResult<LogOptions> {
    let stdout = q.flag("stdout");
    let stderr = q.flag("stderr");
    if !stdout && !stderr {
        return Err(HttpError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail").unwrap_or("all") {
        "all" | "" => None,
        n => Some(
            n.parse::<i64>()
                .map_err(|_| HttpError::bad_request(format!("invalid tail={n}: not a number")))?,
        )
        .filter(|n| *n >= 0)
        .map(|n| n as usize),
    };
    let time = |k: &str| {
        q.get(k)
            .filter(|s| !s.is_empty() && *s != "0")
            .map(parse_time_param)
            .transpose()
            .map_err(HttpError::bad_request)
    };
    Ok(LogOptions {
        follow: q.flag("follow"),
        tail,
        since: time("since")?,
        until: time("until")?,
        timestamps: q.flag("timestamps"),
        stdout,
        stderr,
    })
}

async fn logs(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(version): Extension<ApiVersion>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let options = log_options(&q)?;
    // Framing depends on the container's TTY, as the CLI's demuxing does.
    let details = inspect_json(&st, &caller, &id).await?;
    let tty = details["Config"]["Tty"].as_bool().unwrap_or(false);
    let (timestamps, want_out, want_err) = (options.timestamps, options.stdout, options.stderr);
    let rx = match st
        .submit(
            &caller,
            Command::ContainerLogs {
                id: cid(id),
                options,
            },
        )
        .await?
    {
        Reply::Logs(rx) => rx,
        other => return Err(unexpected("logs", &other)),
    };
    let lines = futures_util::StreamExt::filter_map(stream::from_receiver(rx), move |l| {
        let keep = match l.stream {
            crate::api::Stream::Stdout => want_out,
            crate::api::Stream::Stderr => want_err,
        };
        std::future::ready(keep.then(|| log_bytes(&l, timestamps, tty)))
    });
    Ok(stream::streaming(
        stream::output_content_type(tty, version),
        lines,
    ))
}

async fn stats(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let streaming = q.flag_or("stream", true);
    let details = inspect_json(&st, &caller, &id).await?;
    let name = details["Name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned();
    let mut rx = match st
        .submit(
            &caller,
            Command::ContainerStats {
                id: cid(id.clone()),
                stream: streaming,
            },
        )
        .await?
    {
        Reply::Stats(rx) => rx,
        other => return Err(unexpected("stats", &other)),
    };
    let (cpus, mem) = (st.host.ncpu as u64, st.host.mem_total);
    if !streaming {
        let sample = rx.recv().await.ok_or_else(|| {
            HttpError::new(
                StatusCode::CONFLICT,
                format!("container {id} is not running"),
            )
        })?;
        return Ok(Json(stats_json(&sample, &name, cpus, mem)).into_response());
    }
    Ok(stream::json_lines(futures_util::StreamExt::map(
        stream::from_receiver(rx),
        move |s| stats_json(&s, &name, cpus, mem),
    )))
}

/// `{Titles, Processes}` from the engine's answer: Docker's shape passes through; a list of
/// objects becomes a table with the first object's keys as titles.
pub(super) fn top_json(v: Value) -> HttpResult<Value> {
    if v.get("Titles").is_some() {
        return Ok(v);
    }
    let Value::Array(rows) = v else {
        return Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the engine's process list is not understood",
        ));
    };
    let titles: Vec<String> = rows
        .first()
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let processes: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            titles
                .iter()
                .map(|t| match &r[t] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    Ok(json!({ "Titles": titles, "Processes": processes }))
}

async fn top(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> HttpResult<Json<Value>> {
    match st
        .submit(&caller, Command::ContainerTop { id: cid(id) })
        .await?
    {
        Reply::Json(v) => top_json(v).map(Json),
        other => Err(unexpected("top", &other)),
    }
}

async fn exec_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> HttpResult<Response> {
    let parsed: ExecCreateBody = json_body(&body)?;
    let config = exec_config(&id, parsed).map_err(HttpError::bad_request)?;
    match st
        .submit(
            &caller,
            Command::ExecCreate {
                config: Box::new(config),
            },
        )
        .await?
    {
        Reply::ExecId(exec) => {
            Ok((StatusCode::CREATED, Json(json!({ "Id": exec }))).into_response())
        }
        other => Err(unexpected("exec create", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Stream as S;

    fn params(q: &str) -> Params {
        let uri: axum::http::Uri = format!("/x?{q}").parse().unwrap();
        Params(
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
                .unwrap()
                .0,
        )
    }

    #[test]
    fn wait_conditions_and_bodies() {
        assert_eq!(wait_condition(None).unwrap(), WaitCondition::NotRunning);
        assert_eq!(
            wait_condition(Some("next-exit")).unwrap(),
            WaitCondition::NextExit
        );
        assert_eq!(
            wait_condition(Some("removed")).unwrap(),
            WaitCondition::Removed
        );
        assert_eq!(
            wait_condition(Some("soon")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(wait_body(Ok(3)), json!({"StatusCode":3,"Error":null}));
        assert_eq!(wait_body(Err("gone".into()))["Error"]["Message"], "gone");
    }

    #[test]
    fn log_lines_are_framed_unless_tty_with_optional_timestamps() {
        let l = LogLine {
            stream: S::Stderr,
            time: 1_700_000_000_000_000_001,
            line: "boom".into(),
        };
        let b = log_bytes(&l, false, false);
        assert_eq!(&b[..8], &[2, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&b[8..], b"boom\n");
        assert_eq!(&log_bytes(&l, false, true)[..], b"boom\n");
        assert_eq!(
            &log_bytes(&l, true, true)[..],
            b"2023-11-14T22:13:20.000000001Z boom\n"
        );
    }

    #[test]
    fn log_options_from_the_clis_query() {
        let o = log_options(&params("follow=1&stderr=1&stdout=1&tail=all")).unwrap();
        assert!(o.follow && o.stdout && o.stderr && !o.timestamps);
        assert_eq!((o.tail, o.since, o.until), (None, None, None));
        let o = log_options(&params("stdout=1&tail=10&since=1700000000&timestamps=1")).unwrap();
        assert_eq!(o.tail, Some(10));
        assert_eq!(o.since, Some(1_700_000_000_000_000_000));
        assert!(o.timestamps && !o.stderr);
        assert!(log_options(&params("follow=1")).is_err());
        assert!(log_options(&params("stdout=1&tail=x")).is_err());
    }

    #[test]
    fn resize_needs_both_sizes_and_params_keep_repeats() {
        assert_eq!(size_params(&params("h=40&w=120")).unwrap(), (40, 120));
        assert!(size_params(&params("h=40")).is_err());
        assert!(size_params(&params("h=x&w=1")).is_err());
        let p = params("names=a&names=b&stream=0");
        assert_eq!(p.all("names"), ["a", "b"]);
        assert!(!p.flag_or("stream", true));
        assert!(p.flag_or("follow", true));
    }

    #[test]
    fn top_tables() {
        let docker = json!({"Titles":["PID"],"Processes":[["1"]]});
        assert_eq!(top_json(docker.clone()).unwrap(), docker);
        let t = top_json(json!([{"PID": 1, "CMD": "sh"}, {"PID": 7, "CMD": "sleep 9"}])).unwrap();
        assert_eq!(t["Titles"], json!(["CMD", "PID"]));
        assert_eq!(t["Processes"], json!([["sh", "1"], ["sleep 9", "7"]]));
        assert!(top_json(json!("x")).is_err());
    }
}
