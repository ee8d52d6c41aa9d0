//! `/images/...` and `/build`.
//!
//! Image names contain slashes (`127.0.0.1:5000/busybox`), and the CLI does not escape them,
//! so everything under `/images/` that is not a fixed path is one wildcard, split here by its
//! last component (`json`, `history`, `tag`, `push`, `get`).

use super::{AppState, Begun, Params, unexpected};
use crate::api::dispatch::Caller;
use crate::api::http::docker::image::{
    self as di, PullProgress, PushProgress, list_item, list_matches, pull_reference, removed,
    stream_error,
};
use crate::api::http::error::{HttpError, HttpResult};
use crate::api::http::stream;
use crate::api::http::version::ApiVersion;
use crate::api::{ApiError, BuildConfig, Command, Digest, Event, ImageRef, Reply};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(create))
        .route("/images/prune", post(prune))
        .route("/images/get", get(save))
        .route("/images/load", post(load))
        .route("/images/search", get(search))
        .route(
            "/images/{*rest}",
            get(get_image).post(post_image).delete(remove),
        )
}

/// `name/verb` → (`name`, `verb`).
fn split_verb(rest: &str) -> (&str, &str) {
    rest.rsplit_once('/').unwrap_or((rest, ""))
}

async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(version): Extension<ApiVersion>,
    q: Params,
) -> HttpResult<Json<Value>> {
    let filters = q.filters()?;
    filters
        .only(di::LIST_FILTERS)
        .map_err(HttpError::bad_request)?;
    let images = match st.submit(&caller, Command::ImageList).await? {
        Reply::Images(l) => l,
        other => return Err(unexpected("image list", &other)),
    };
    let mut out = Vec::with_capacity(images.len());
    for i in &images {
        if list_matches(i, &filters).map_err(HttpError::bad_request)? {
            out.push(list_item(i, version < ApiVersion(1, 44)));
        }
    }
    Ok(Json(Value::Array(out)))
}

async fn get_image(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(rest): Path<String>,
) -> HttpResult<Response> {
    let (name, verb) = split_verb(&rest);
    let reference = ImageRef(name.to_owned());
    match verb {
        "json" => match st
            .submit(&caller, Command::ImageInspect { reference })
            .await?
        {
            Reply::Json(v) => di::inspect(v)
                .map(|v| Json(v).into_response())
                .map_err(|m| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, m)),
            other => Err(unexpected("image inspect", &other)),
        },
        "history" => match st
            .submit(&caller, Command::ImageHistory { reference })
            .await?
        {
            Reply::Json(v) => di::history(v)
                .map(|v| Json(v).into_response())
                .map_err(|m| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, m)),
            other => Err(unexpected("image history", &other)),
        },
        "get" => Err(not_yet("saving images (GET /images/{name}/get)")),
        _ => Err(HttpError::not_found(format!(
            "page not found: /images/{rest}"
        ))),
    }
}

async fn post_image(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(rest): Path<String>,
    q: Params,
) -> HttpResult<Response> {
    let (name, verb) = split_verb(&rest);
    match verb {
        "tag" => {
            let repo = q
                .get("repo")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| HttpError::bad_request("repo is required"))?;
            let tag = q.get("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
            let cmd = Command::ImageTag {
                source: ImageRef(name.to_owned()),
                target: ImageRef(format!("{repo}:{tag}")),
            };
            match st.submit(&caller, cmd).await? {
                Reply::Done | Reply::ImageId(_) => Ok(StatusCode::CREATED.into_response()),
                other => Err(unexpected("tag", &other)),
            }
        }
        "push" => push(st, caller, name, q.get("tag")).await,
        _ => Err(HttpError::not_found(format!(
            "page not found: /images/{rest}"
        ))),
    }
}

async fn remove(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    q: Params,
) -> HttpResult<Json<Value>> {
    let cmd = Command::ImageRemove {
        reference: ImageRef(name),
        force: q.flag("force"),
    };
    match st.submit(&caller, cmd).await? {
        Reply::ImagesDeleted(items) => Ok(Json(removed(&items))),
        other => Err(unexpected("image remove", &other)),
    }
}

async fn prune(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Json<Value>> {
    let filters = q.filters()?;
    filters
        .only(&["dangling"])
        .map_err(HttpError::bad_request)?;
    let all = filters
        .get("dangling")
        .iter()
        .any(|d| matches!(d.as_str(), "false" | "0"));
    match st.submit(&caller, Command::ImagePrune { all }).await? {
        Reply::Pruned { removed, freed } => Ok(Json(json!({
            "ImagesDeleted": removed.iter().map(|id| json!({ "Deleted": id })).collect::<Vec<_>>(),
            "SpaceReclaimed": freed,
        }))),
        other => Err(unexpected("image prune", &other)),
    }
}

fn not_yet(what: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_IMPLEMENTED,
        format!("{what} is not yet supported by this build of berth"),
    )
}

/// `GET /images/get?names=…`: the engine writes the archive to a private temp file, which is
/// streamed to the client and removed once sent.
async fn save(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Response> {
    let references: Vec<ImageRef> = q
        .all("names")
        .into_iter()
        .map(|n| ImageRef(n.to_owned()))
        .collect();
    let dir = ContextDir::new()
        .map_err(|e| HttpError::from(ApiError::engine("creating a temp dir", e)))?;
    let path = dir.archive();
    st.submit(
        &caller,
        Command::ImageSave {
            references,
            path: path.clone(),
        },
    )
    .await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| HttpError::from(ApiError::engine("reading the archive", e)))?;
    // The directory (and the archive) go when the stream ends: the stream owns `dir`.
    let chunks = futures_util::stream::unfold((file, dir), |(mut f, dir)| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((bytes::Bytes::from(buf), (f, dir)))
            }
        }
    });
    Ok(stream::streaming("application/x-tar", chunks))
}

/// `POST /images/load`: the archive is written to a private temp file as it arrives (bounded),
/// then loaded; the answer is Docker's JSON stream of `Loaded image: …` lines.
async fn load(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
    req: Request,
) -> HttpResult<Response> {
    let dir = ContextDir::new()
        .map_err(|e| HttpError::from(ApiError::engine("creating a temp dir", e)))?;
    let path = dir.archive();
    receive(req.into_body(), &path, MAX_CONTEXT).await?;
    let loaded = match st.submit(&caller, Command::ImageLoad { path }).await? {
        Reply::Loaded(l) => l,
        other => return Err(unexpected("image load", &other)),
    };
    drop(dir);
    // `quiet` only hides progress, which a load from a file has none of: the result lines
    // are always sent, as dockerd does.
    let _quiet = q.flag("quiet");
    let mut lines = Vec::new();
    for (id, names) in loaded {
        if names.is_empty() {
            lines.push(json!({ "stream": format!("Loaded image ID: {id}\n") }));
        }
        for n in names {
            lines.push(json!({ "stream": format!("Loaded image: {n}\n") }));
        }
    }
    Ok(stream::json_lines(futures_util::stream::iter(lines)))
}

async fn search() -> HttpError {
    not_yet("searching registries (GET /images/search)")
}

/// Transfer events of one pull or push, until the command ends, as JSONMessages.
trait Progress: Send + 'static {
    fn is_mine(&self, reference: &str) -> bool;
    fn on_transfer(
        &mut self,
        layer: &Digest,
        phase: crate::api::TransferPhase,
        current: u64,
        total: Option<u64>,
    ) -> Vec<Value>;
    /// The closing lines, from the command's reply and the events seen.
    fn finish(&self, reply: Reply, pushed: Option<&Digest>) -> Result<Vec<Value>, String>;
}

impl Progress for PullProgress {
    fn is_mine(&self, r: &str) -> bool {
        PullProgress::is_mine(self, r)
    }
    fn on_transfer(
        &mut self,
        l: &Digest,
        p: crate::api::TransferPhase,
        c: u64,
        t: Option<u64>,
    ) -> Vec<Value> {
        PullProgress::on_transfer(self, l, p, c, t)
    }
    fn finish(&self, reply: Reply, _: Option<&Digest>) -> Result<Vec<Value>, String> {
        match reply {
            Reply::ImageId(_) | Reply::Done => Ok(PullProgress::finish(self)),
            other => Err(unexpected("pull", &other).message),
        }
    }
}

impl Progress for PushProgress {
    fn is_mine(&self, r: &str) -> bool {
        PushProgress::is_mine(self, r)
    }
    fn on_transfer(
        &mut self,
        l: &Digest,
        p: crate::api::TransferPhase,
        c: u64,
        t: Option<u64>,
    ) -> Vec<Value> {
        PushProgress::on_transfer(self, l, p, c, t)
    }
    fn finish(&self, reply: Reply, pushed: Option<&Digest>) -> Result<Vec<Value>, String> {
        match reply {
            Reply::ImageId(d) => Ok(PushProgress::finish(self, &d, None)),
            Reply::Done => Ok(pushed
                .map(|d| PushProgress::finish(self, d, None))
                .unwrap_or_default()),
            other => Err(unexpected("push", &other).message),
        }
    }
}

/// Run a pull or push with its progress stream: the first line, then the transfer events of
/// this reference as they come, then the closing lines (or the error, in-stream).
async fn progress_stream<P: Progress>(
    st: &AppState,
    caller: &Caller,
    cmd: Command,
    first: Value,
    mut progress: P,
) -> HttpResult<Response> {
    // Subscribe before starting, so no event of this transfer is missed.
    let mut events = st
        .engine
        .subscribe()
        .map_err(|e| HttpError::from(ApiError::engine("following events", e)))?;
    let fut = match st.begin(caller, cmd).await {
        Begun::Finished(Err(e)) => return Err(e.into()),
        Begun::Finished(Ok(reply)) => Box::pin(std::future::ready(Ok(reply))) as _,
        Begun::Running(f) => f,
    };
    let (tx, rx) = mpsc::channel::<Value>(64);
    tokio::spawn(async move {
        let _ = tx.send(first).await;
        let mut pushed: Option<Digest> = None;
        let mut handle = |rec: crate::api::EventRecord, progress: &mut P| -> Vec<Value> {
            match rec.event {
                Event::Transfer {
                    reference,
                    layer,
                    phase,
                    current,
                    total,
                } if progress.is_mine(&reference.0) => {
                    progress.on_transfer(&layer, phase, current, total)
                }
                Event::ImagePushed { reference, digest } if progress.is_mine(&reference.0) => {
                    pushed = Some(digest);
                    Vec::new()
                }
                _ => Vec::new(),
            }
        };
        tokio::pin!(fut);
        let result = loop {
            tokio::select! {
                r = &mut fut => break r,
                ev = events.recv() => match ev {
                    Ok(rec) => {
                        for m in handle(rec, &mut progress) {
                            if tx.send(m).await.is_err() {
                                // The client left: dropping the command cancels the transfer, as dockerd does.
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break fut.await,
                },
            }
        };
        // Events published before the command returned are queued: send them first.
        while let Ok(rec) = events.try_recv() {
            for m in handle(rec, &mut progress) {
                let _ = tx.send(m).await;
            }
        }
        let closing = match result {
            Ok(reply) => progress.finish(reply, pushed.as_ref()),
            Err(e) => Err(e.to_string()),
        };
        match closing {
            Ok(lines) => {
                for l in lines {
                    let _ = tx.send(l).await;
                }
            }
            Err(message) => {
                let _ = tx.send(stream_error(&message)).await;
            }
        }
    });
    Ok(stream::json_lines(stream::from_receiver(rx)))
}

async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Response> {
    if q.get("fromSrc").is_some_and(|s| !s.is_empty()) {
        return Err(not_yet("importing a root filesystem (fromSrc)"));
    }
    let from = q
        .get("fromImage")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| HttpError::bad_request("fromImage is required"))?;
    let reference = pull_reference(from, q.get("tag"));
    let progress = PullProgress::new(&reference);
    let first = progress.start();
    let cmd = Command::ImagePull {
        reference: ImageRef(reference),
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    };
    progress_stream(&st, &caller, cmd, first, progress).await
}

async fn push(st: AppState, caller: Caller, name: &str, tag: Option<&str>) -> HttpResult<Response> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let reference = match tag.filter(|t| !t.is_empty()) {
        Some(t) if !last.contains(':') && !name.contains('@') => format!("{name}:{t}"),
        _ if !last.contains(':') && !name.contains('@') => format!("{name}:latest"),
        _ => name.to_owned(),
    };
    let progress = PushProgress::new(&reference);
    let first = progress.start();
    let cmd = Command::ImagePush {
        reference: ImageRef(reference),
    };
    progress_stream(&st, &caller, cmd, first, progress).await
}

/// `POST /build` (the classic builder): the tar context is unpacked into a private temporary
/// directory, the engine builds from it, its output lines stream back as `{"stream": …}`.
pub(super) async fn build(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
    req: Request,
) -> HttpResult<Response> {
    let build_args: Vec<(String, String)> = match q.get("buildargs").filter(|b| !b.is_empty()) {
        None => Vec::new(),
        Some(raw) => {
            serde_json::from_str::<std::collections::BTreeMap<String, Option<String>>>(raw)
                .map_err(|e| HttpError::bad_request(format!("invalid buildargs: {e}")))?
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
        }
    };
    let tags: Vec<String> = q
        .all("t")
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let dir = ContextDir::new()
        .map_err(|e| HttpError::from(ApiError::engine("making a build context directory", e)))?;
    // The context goes to disk as it arrives (it can be large), then is unpacked.
    receive(req.into_body(), &dir.archive(), MAX_CONTEXT).await?;
    let (archive, context) = (dir.archive(), dir.context());
    tokio::task::spawn_blocking(move || {
        let f = std::io::BufReader::new(std::fs::File::open(&archive)?);
        unpack_context(f, &context)
    })
    .await
    .map_err(|e| HttpError::from(ApiError::engine("unpacking the build context", e)))?
    .map_err(|e| HttpError::bad_request(format!("unpacking the build context: {e}")))?;
    let config = BuildConfig {
        context: dir.context(),
        dockerfile: q
            .get("dockerfile")
            .filter(|d| !d.is_empty())
            .map(Into::into),
        tags: tags.clone(),
        build_args,
        no_cache: q.flag("nocache"),
        target: q.get("target").filter(|t| !t.is_empty()).map(str::to_owned),
    };
    let mut events = st
        .engine
        .subscribe()
        .map_err(|e| HttpError::from(ApiError::engine("following events", e)))?;
    let fut = match st
        .begin(
            &caller,
            Command::ImageBuild {
                config: Box::new(config),
            },
        )
        .await
    {
        Begun::Finished(Err(e)) => return Err(e.into()),
        Begun::Finished(Ok(reply)) => Box::pin(std::future::ready(Ok(reply))) as _,
        Begun::Running(f) => f,
    };
    let (tx, rx) = mpsc::channel::<Value>(64);
    tokio::spawn(async move {
        // The context directory lives until the build is over.
        let _dir = dir;
        let line = |e: &Event| match e {
            Event::BuildOutput { line } => Some(json!({ "stream": format!("{line}\n") })),
            _ => None,
        };
        tokio::pin!(fut);
        let result = loop {
            tokio::select! {
                r = &mut fut => break r,
                ev = events.recv() => match ev {
                    Ok(rec) => if let Some(m) = line(&rec.event) { let _ = tx.send(m).await; },
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break fut.await,
                },
            }
        };
        while let Ok(rec) = events.try_recv() {
            if let Some(m) = line(&rec.event) {
                let _ = tx.send(m).await;
            }
        }
        let closing = match result {
            Ok(Reply::ImageId(id)) => {
                let mut v = vec![
                    json!({ "aux": { "ID": id } }),
                    json!({ "stream": format!("Successfully built {}\n", id.short()) }),
                ];
                v.extend(
                    tags.iter()
                        .map(|t| json!({ "stream": format!("Successfully tagged {t}\n") })),
                );
                v
            }
            Ok(other) => vec![stream_error(&unexpected("build", &other).message)],
            Err(e) => vec![stream_error(&e.to_string())],
        };
        for m in closing {
            let _ = tx.send(m).await;
        }
    });
    Ok(stream::json_lines(stream::from_receiver(rx)))
}

/// The largest build context accepted.
const MAX_CONTEXT: usize = 4 << 30;

/// Write a request body to `path`, refusing more than `limit` bytes.
async fn receive(body: axum::body::Body, path: &std::path::Path, limit: usize) -> HttpResult<()> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let io_err =
        |e: std::io::Error| HttpError::from(ApiError::engine("saving the build context", e));
    let mut file = tokio::fs::File::create(path).await.map_err(io_err)?;
    let mut body = body;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| HttpError::bad_request(format!("reading the build context: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total > limit {
                return Err(HttpError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the build context is larger than {limit} bytes"),
                ));
            }
            file.write_all(&data).await.map_err(io_err)?;
        }
    }
    file.flush().await.map_err(io_err)
}

/// A private directory for one build (the archive as received, and the unpacked context),
/// removed when dropped.
struct ContextDir {
    path: std::path::PathBuf,
}

impl ContextDir {
    fn new() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!("berth-build-{:016x}", rand::random::<u64>()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path.join("context"))?;
        Ok(Self { path })
    }

    fn archive(&self) -> std::path::PathBuf {
        self.path.join("context.tar")
    }

    fn context(&self) -> std::path::PathBuf {
        self.path.join("context")
    }
}

impl Drop for ContextDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Unpack a tar (plain or gzip) into `dir`. The tar crate refuses entries that would land
/// outside `dir`; ownership, permissions beyond the mode, and xattrs are not restored.
fn unpack_context(mut body: impl std::io::BufRead, dir: &std::path::Path) -> std::io::Result<()> {
    let gzip = body.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn std::io::Read + '_> = if gzip {
        Box::new(flate2::read::GzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(false);
    ar.set_preserve_ownerships(false);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    ar.unpack(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_split_at_the_last_component() {
        assert_eq!(
            split_verb("127.0.0.1:5000/busybox/json"),
            ("127.0.0.1:5000/busybox", "json")
        );
        assert_eq!(split_verb("busybox:1/history"), ("busybox:1", "history"));
        assert_eq!(split_verb("busybox"), ("busybox", ""));
    }

    #[tokio::test]
    async fn build_contexts_are_saved_as_they_arrive_up_to_a_limit() {
        let d = ContextDir::new().unwrap();
        let chunks = futures_util::stream::iter(
            ["abc", "def"].map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c))),
        );
        receive(axum::body::Body::from_stream(chunks), &d.archive(), 6)
            .await
            .unwrap();
        assert_eq!(std::fs::read(d.archive()).unwrap(), b"abcdef");
        let err = receive(axum::body::Body::from("1234567"), &d.archive(), 6)
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn build_contexts_unpack_plain_and_gzip_and_stay_inside() {
        let mut b = tar::Builder::new(Vec::new());
        let data = b"FROM scratch\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "Dockerfile", &data[..]).unwrap();
        let tarball = b.into_inner().unwrap();
        let d = ContextDir::new().unwrap();
        unpack_context(&tarball[..], &d.path).unwrap();
        assert_eq!(std::fs::read(d.path.join("Dockerfile")).unwrap(), data);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tarball).unwrap();
        let d2 = ContextDir::new().unwrap();
        unpack_context(&gz.finish().unwrap()[..], &d2.path).unwrap();
        assert!(d2.path.join("Dockerfile").is_file());

        // An entry climbing out of the context is not written outside it.
        let mut evil = Vec::new();
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..12].copy_from_slice(b"../escape.tx");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        evil.extend_from_slice(h.as_bytes());
        evil.extend_from_slice(b"x");
        evil.resize(evil.len() + 511 + 1024, 0);
        let d3 = ContextDir::new().unwrap();
        let _ = unpack_context(&evil[..], &d3.path);
        assert!(!d3.path.parent().unwrap().join("escape.tx").exists());
        let path = d3.path.clone();
        drop(d3);
        assert!(!path.exists(), "the context directory is removed");
    }
}
