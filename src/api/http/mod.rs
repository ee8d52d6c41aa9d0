//! `berth serve`: the Docker Engine API on a unix socket, in front of the same dispatcher as the
//! console.
//!
//! Module map:
//! - `peer`: who is on the other end of a connection (SO_PEERCRED + `/proc/<pid>/status`).
//! - `version`: the `/vX.Y` prefix, API version bounds, and the request preparation step.
//! - `error`: `ApiError` → Docker's status codes and `{"message"}` bodies.
//! - `docker/`: the Docker JSON shapes and their mapping to and from the engine's types.
//! - `stream`: stdcopy framing, JSON-lines bodies, the 101 UPGRADED hijack.
//! - `routes/`: one file per object kind (system, containers, exec, images, events, misc).
//!
//! Each connection's peer credentials become the policy subject of every request on it; the
//! dispatcher decides and audits. The API cannot ask for confirmation, so `confirm` rules refuse.

mod docker;
mod error;
mod peer;
mod routes;
mod stream;
mod version;

#[cfg(test)]
mod wire_tests;

pub use version::{API_MAX, API_MIN, ApiVersion};

use super::dispatch::Caller;
use super::engine::Engine;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::net::UnixListener;
use tower::ServiceExt;

/// The socket `berth serve` listens on unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// The group given access to the socket when it exists.
pub const SOCKET_GROUP: &str = "berth";

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub socket: PathBuf,
    /// The group that owns the socket (mode 0660); `None` leaves it root's group. Default: the
    /// `berth` group when it exists.
    pub group: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_SOCKET),
            group: Some(SOCKET_GROUP.to_owned()),
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("another server is already listening on {0}")]
    InUse(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set the owner or mode of {path}: {message}")]
    Permissions { path: PathBuf, message: String },
    #[error("accepting connections on {path}: {source}")]
    Accept {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Serve the Docker Engine API on `opts.socket` until SIGINT or SIGTERM, then remove the socket.
pub async fn serve(engine: Engine, opts: ServeOptions) -> Result<(), ServeError> {
    Server::bind(&opts)?.run(engine).await
}

/// A bound socket, ready to serve (so a front end can say so before it blocks).
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

impl Server {
    pub fn bind(opts: &ServeOptions) -> Result<Self, ServeError> {
        Ok(Self {
            listener: bind(&opts.socket, opts.group.as_deref())?,
            path: opts.socket.clone(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serve until SIGINT or SIGTERM, then remove the socket.
    pub async fn run(self, engine: Engine) -> Result<(), ServeError> {
        let shutdown = async {
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            match term {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        let result = serve_on(engine, self.listener, &self.path, shutdown).await;
        let _ = std::fs::remove_file(&self.path);
        result
    }
}

/// Create the socket: its directory (0755), a stale socket replaced, mode 0660, owned by `group`
/// when that group exists.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, ServeError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::Bind {
            path: path.to_owned(),
            source,
        })?;
    }
    if path.exists() {
        // A live server answers a connect; a stale socket from a crash does not.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServeError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(|source| ServeError::Bind {
            path: path.to_owned(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ServeError::Bind {
        path: path.to_owned(),
        source,
    })?;
    let perm = |message: String| ServeError::Permissions {
        path: path.to_owned(),
        message,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| perm(e.to_string()))?;
    if let Some(name) = group {
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => nix::unistd::chown(path, None, Some(g.gid))
                .map_err(|e| perm(format!("chown to group {name}: {e}")))?,
            Ok(None) => {}
            Err(e) => return Err(perm(format!("looking up group {name}: {e}"))),
        }
    }
    Ok(listener)
}

/// Serve on an existing listener until `shutdown` resolves. Connections already open are left
/// to finish on their own tasks.
pub async fn serve_on(
    engine: Engine,
    listener: UnixListener,
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    accept_loop(routes::router(engine), listener, path, shutdown).await
}

/// Accept connections and serve `router` on each, as its peer.
async fn accept_loop(
    router: Router,
    listener: UnixListener,
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    tokio::pin!(shutdown);
    let service = Service {
        router,
        half_close: false,
    };
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A peer that vanished before we took it: keep serving the others.
                Err(e) if is_transient(&e) => continue,
                // Out of descriptors: give open connections a moment to finish, then go on.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
                Err(source) => return Err(ServeError::Accept { path: path.to_owned(), source }),
            },
        };
        let peer = peer::identify(&stream);
        let service = service.clone();
        tokio::spawn(async move { service.serve_connection(stream, peer).await });
    }
}

/// The API as served on one connection: what the accept loop runs for each client. Public so
/// that any byte stream can be served the same way (the API fuzz target feeds it raw requests
/// over an in-memory pipe).
#[derive(Clone)]
pub struct Service {
    router: Router,
    half_close: bool,
}

impl Service {
    pub fn new(engine: Engine) -> Self {
        Self {
            router: routes::router(engine),
            half_close: false,
        }
    }

    /// Answer requests whose client shut down its writing side after sending them (off by
    /// default, as for the socket: there a hung-up client cancels its request, so a `wait` it
    /// gave up on does not linger). The fuzz target sends its input, then shuts down.
    pub fn half_close(mut self, on: bool) -> Self {
        self.half_close = on;
        self
    }

    /// Serve HTTP/1 requests on `io` from `peer` (or refuse them, when the peer could not be
    /// identified) until the client hangs up.
    pub async fn serve_connection<I>(&self, io: I, peer: Result<Caller, String>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let router = router.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(handle(router, peer, req).await) }
        });
        // Connection errors (a client that hangs up mid-request, `docker run -d` dropping its
        // wait) end this connection only.
        let _ = hyper::server::conn::http1::Builder::new()
            .half_close(self.half_close)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
            .await;
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// One request: who is asking, which API version, then the router.
async fn handle(
    router: Router,
    peer: Result<Caller, String>,
    req: hyper::Request<Incoming>,
) -> axum::response::Response {
    let caller = match peer {
        Ok(c) => c,
        Err(reason) => {
            return error::HttpError::new(
                hyper::StatusCode::FORBIDDEN,
                format!("cannot identify the connecting process: {reason}"),
            )
            .into_response_with_version();
        }
    };
    let mut req = match version::prepare(req) {
        Ok(r) => r,
        Err(e) => return e.into_response_with_version(),
    };
    req.extensions_mut().insert(caller);
    let mut resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    version::stamp(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn the_socket_is_0660_owned_by_the_group_when_it_exists() {
        // chown to a group one is not in needs root.
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "this test needs root");
            eprintln!("skipping: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/berth.sock");
        let group = nix::unistd::Group::from_name("nogroup")
            .unwrap()
            .expect("Debian has a nogroup group");
        let _l = bind(&path, Some("nogroup")).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), group.gid.as_raw());
        // A group that does not exist leaves the socket to the server's group.
        let other = dir.path().join("other.sock");
        let _m = bind(&other, Some("berth-no-such-group")).unwrap();
        assert_eq!(
            std::fs::metadata(&other).unwrap().gid(),
            nix::unistd::getegid().as_raw()
        );
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        // Left behind by a crash: a socket file nobody listens on.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = bind(&path, None).unwrap();
        match bind(&path, None) {
            Err(ServeError::InUse(p)) => assert_eq!(p, path),
            other => panic!("expected InUse, got {:?}", other.map(|_| ())),
        }
        drop(live);
    }
}
