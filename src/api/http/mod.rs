//! `berth serve`: the Docker Engine API on a unix socket, in front of the same dispatcher as the
//! console.
//!
//! Module map:
//! - `peer`: who is on the other end of a connection (SO_PEERCRED + `/proc/<pid>/status`).
//! - `version`: the `/vX.Y` prefix, API version bounds, and the request preparation step.
//! - `error`: `ApiError` → Docker's status codes and `{"message"}` bodies.
//! - `docker/`: the Docker JSON shapes and their mapping to and from the engine's types.
//! - `stream`: stdcopy framing, JSON-lines bodies, the 101 UPGRADED hijack.
//! - `routes/`: one file per object kind (system, containers, exec, images, networks, volumes,
//!   events, misc).
//!
//! - `tls`: `--tcp`, TLS with client certificates; the certificate's CN names the local user.
//!
//! Each connection's peer credentials (unix socket) or client certificate (TCP) become the
//! policy subject of every request on it; the dispatcher decides and audits. The API cannot ask
//! for confirmation, so `confirm` rules refuse.

mod docker;
mod error;
mod peer;
mod routes;
mod stream;
mod tls;
mod version;

#[cfg(test)]
mod wire_tests;

pub use tls::{DEFAULT_TLS_DIR, TlsFiles};
pub use version::{API_MAX, API_MIN, ApiVersion};

use super::dispatch::Caller;
use super::engine::Engine;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
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
    /// Also listen on TCP, TLS with client certificates only.
    pub tcp: Option<TcpOptions>,
}

/// `--tcp ADDR` and its TLS files.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    /// `HOST:PORT` (port 0 picks a free one; [`Server::tcp_addr`] tells which).
    pub addr: String,
    pub tls: TlsFiles,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_SOCKET),
            group: Some(SOCKET_GROUP.to_owned()),
            tcp: None,
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
    #[error("TLS: {path}: {message}")]
    Tls { path: PathBuf, message: String },
    #[error("cannot listen on tcp://{addr}: {source}")]
    TcpBind {
        addr: String,
        source: std::io::Error,
    },
    #[error("accepting connections on tcp://{addr}: {source}")]
    TcpAccept {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Serve the Docker Engine API on `opts.socket` until SIGINT or SIGTERM, then remove the socket.
pub async fn serve(engine: Engine, opts: ServeOptions) -> Result<(), ServeError> {
    Server::bind(&opts)?.run(engine).await
}

/// A bound socket (and TCP listener), ready to serve (so a front end can say so before it
/// blocks).
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    tcp: Option<TlsListener>,
}

struct TlsListener {
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Server {
    /// Bind the socket, and the TCP address when asked (its TLS files are read first: without
    /// them nothing is bound).
    pub fn bind(opts: &ServeOptions) -> Result<Self, ServeError> {
        let tcp = match &opts.tcp {
            None => None,
            Some(t) => {
                let config = tls::server_config(&t.tls)?;
                let listener = std::net::TcpListener::bind(&t.addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .and_then(TcpListener::from_std)
                    .map_err(|source| ServeError::TcpBind {
                        addr: t.addr.clone(),
                        source,
                    })?;
                let addr = listener
                    .local_addr()
                    .map_err(|source| ServeError::TcpBind {
                        addr: t.addr.clone(),
                        source,
                    })?;
                Some(TlsListener {
                    listener,
                    addr,
                    acceptor: tokio_rustls::TlsAcceptor::from(config),
                })
            }
        };
        Ok(Self {
            listener: bind(&opts.socket, opts.group.as_deref())?,
            path: opts.socket.clone(),
            tcp,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The TCP address listened on, when there is one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|t| t.addr)
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
        let router = routes::router(engine);
        tokio::spawn(trim_when_quiet());
        let unix = accept_forever(router.clone(), self.listener, &self.path);
        let result = match self.tcp {
            None => tokio::select! {
                r = unix => r,
                _ = shutdown => Ok(()),
            },
            Some(t) => tokio::select! {
                r = unix => r,
                r = tls_accept_loop(router, t) => r,
                _ = shutdown => Ok(()),
            },
        };
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

/// Out of descriptors: give open connections a moment to finish, then go on.
fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Accept connections and serve `router` on each, as its peer, until `shutdown` resolves.
async fn accept_loop(
    router: Router,
    listener: UnixListener,
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    tokio::select! {
        r = accept_forever(router, listener, path) => r,
        _ = shutdown => Ok(()),
    }
}

async fn accept_forever(
    router: Router,
    listener: UnixListener,
    path: &Path,
) -> Result<(), ServeError> {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // A peer that vanished before we took it: keep serving the others.
            Err(e) if is_transient(&e) => continue,
            Err(e) if out_of_descriptors(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            Err(source) => {
                return Err(ServeError::Accept {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let peer = peer::identify(&stream);
        tokio::spawn(serve_connection(router.clone(), peer, stream));
    }
}

/// How long a TCP client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accept TCP connections; each one's TLS handshake (which requires a client certificate
/// signed by the CA) happens on its own task, then its certificate names the caller.
async fn tls_accept_loop(router: Router, t: TlsListener) -> Result<(), ServeError> {
    loop {
        let stream = match t.listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_transient(&e) => continue,
            Err(e) if out_of_descriptors(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            Err(source) => {
                return Err(ServeError::TcpAccept {
                    addr: t.addr,
                    source,
                });
            }
        };
        let acceptor = t.acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            // A refused certificate ends the handshake with a TLS alert; nothing else to do.
            let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            else {
                return;
            };
            let peer = tls::identify(tls.get_ref().1.peer_certificates().and_then(|c| c.first()));
            serve_connection(router, peer, tls).await;
        });
    }
}

/// Serve HTTP/1.1 (with upgrades, for attach and exec) on one connection, as `peer`.
async fn serve_connection<S>(router: Router, peer: Result<Caller, String>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_connection_with(router, peer, stream, false).await
}

/// The API as served on one connection, as the accept loops run it for each client. Public so
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
    /// default, as for the sockets: there a hung-up client cancels its request, so a `wait` it
    /// gave up on does not linger). The fuzz target sends its input, then shuts down.
    pub fn half_close(mut self, on: bool) -> Self {
        self.half_close = on;
        self
    }

    /// Serve HTTP/1 requests on `io` from `peer` (or refuse them, when the peer could not be
    /// identified) until the client hangs up.
    pub async fn serve_connection<I>(&self, io: I, peer: Result<Caller, String>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve_connection_with(self.router.clone(), peer, io, self.half_close).await
    }
}

async fn serve_connection_with<S>(
    router: Router,
    peer: Result<Caller, String>,
    stream: S,
    half_close: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        let peer = peer.clone();
        async move { Ok::<_, Infallible>(handle(router, peer, req).await) }
    });
    // Connection errors (a client that hangs up mid-request, `docker run -d` dropping its
    // wait) end this connection only.
    let _ = hyper::server::conn::http1::Builder::new()
        .half_close(half_close)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    CONNECTION_ENDED.notify_one();
}

/// Connections that ended since the trimmer last looked.
static CONNECTION_ENDED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// How long no connection has to end before free memory goes back to the kernel.
const QUIET_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// After a burst of requests (hundreds of `docker run -d`, attach streams, big lists) the
/// allocator keeps the pages they used; once serve has been quiet for a moment, they go back
/// to the kernel, so an idle server's RSS is what it holds, not what it once needed.
async fn trim_when_quiet() {
    loop {
        CONNECTION_ENDED.notified().await;
        while tokio::time::timeout(QUIET_FOR, CONNECTION_ENDED.notified())
            .await
            .is_ok()
        {}
        crate::runtime::sys::release_free_memory();
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
