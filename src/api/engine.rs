//! The handle the front ends hold: submit a command, get its result; subscribe to events.

use super::command::Command;
use super::dispatch::{Caller, Dispatcher};
use super::error::ApiError;
use super::event::EventRecord;
use super::events::EventBus;
use super::reply::Reply;
use super::root::StateRoot;
use crate::security::{Policy, PolicyError};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How to open an engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The state root; default [`StateRoot::default_path`].
    pub root: Option<PathBuf>,
    /// A policy file; default `/etc/berth/policy.toml` when it exists, else the shipped one.
    pub policy: Option<PathBuf>,
}

/// Why an engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot use the state root {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid policy, refusing to start: {0}")]
    Policy(#[from] PolicyError),
    #[error("cannot open the image store: {0}")]
    Images(#[from] crate::image::ImageError),
    #[error("cannot open the container runtime: {0}")]
    Runtime(#[from] crate::runtime::RuntimeError),
}

/// The system-wide policy file, used when no `--policy` is given and it exists.
pub const SYSTEM_POLICY: &str = "/etc/berth/policy.toml";

/// An engine: the embedded one, or a `berth serve` reached over its socket. Cheap to clone;
/// every clone talks to the same dispatcher.
#[derive(Clone)]
pub struct Engine {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Local(Arc<Dispatcher>),
    Remote(super::remote::Remote),
}

impl Engine {
    /// Open the state root and load the policy. An invalid policy is an error: the engine never
    /// falls back to allowing everything.
    pub fn open(opts: EngineOptions) -> Result<Self, EngineError> {
        let path = opts.root.unwrap_or_else(StateRoot::default_path);
        let root = StateRoot::open(&path).map_err(|source| EngineError::Root { path, source })?;
        let policy = load_policy(opts.policy.as_deref())?;
        let bus = EventBus::new(root.events_path());
        let images = crate::image::ImageStore::open(root.path())?;
        let runtime = crate::runtime::Runtime::open(root.path())?;
        Ok(Self {
            inner: Inner::Local(Arc::new(Dispatcher::new(
                root, policy, bus, images, runtime,
            ))),
        })
    }

    /// An engine served by `berth serve` at `host` (`unix:///path`). Its policy applies, with
    /// this process's user as the subject.
    pub fn connect(host: &str) -> Result<Self, ApiError> {
        Ok(Self {
            inner: Inner::Remote(super::remote::Remote::parse(host)?),
        })
    }

    /// What the console shows as the engine it drives.
    pub fn label(&self) -> String {
        match &self.inner {
            Inner::Local(d) => d.root().path().display().to_string(),
            Inner::Remote(r) => format!("unix://{}", r.socket().display()),
        }
    }

    /// Submit a command as this process's user.
    pub async fn submit(&self, cmd: Command) -> Result<Reply, ApiError> {
        self.submit_as(&Caller::current(), cmd).await
    }

    /// Submit a command for a given caller (the API server's peers; the console after a
    /// confirmation).
    pub async fn submit_as(&self, caller: &Caller, cmd: Command) -> Result<Reply, ApiError> {
        match &self.inner {
            Inner::Local(d) => d.dispatch(caller, cmd).await,
            // The server knows the caller from the connection; only the confirmation travels.
            Inner::Remote(r) => r.submit(cmd, caller.confirmed).await,
        }
    }

    /// Every event from now on, this process's and other berth processes' on the same root.
    pub fn subscribe(&self) -> std::io::Result<broadcast::Receiver<EventRecord>> {
        match &self.inner {
            Inner::Local(d) => {
                let rx = d.bus().subscribe()?;
                d.watch_runtime();
                Ok(rx)
            }
            Inner::Remote(r) => r.subscribe(),
        }
    }

    /// Start the clean-up of crash debris on a task of its own (off the request path; it
    /// waits for the root's change lock like any change): what `system check --repair` removes,
    /// blobs not hashed. For the long-running engines at start (`berth serve`, the console),
    /// never the one-shot CLI. The answer: what was removed (also published as
    /// [`super::Event::DebrisRemoved`]). `None` for a remote engine: its server cleans up.
    pub fn repair_crash_debris(
        &self,
    ) -> Option<tokio::task::JoinHandle<Result<Vec<String>, ApiError>>> {
        match &self.inner {
            Inner::Local(d) => {
                let d = Arc::clone(d);
                Some(tokio::spawn(async move { d.repair_crash_debris().await }))
            }
            Inner::Remote(_) => None,
        }
    }

    /// The state root of an embedded engine (`None` for a remote one).
    pub fn root(&self) -> Option<&StateRoot> {
        match &self.inner {
            Inner::Local(d) => Some(d.root()),
            Inner::Remote(_) => None,
        }
    }

    /// The policy of an embedded engine (`None` for a remote one: its server decides).
    pub fn policy(&self) -> Option<&Policy> {
        match &self.inner {
            Inner::Local(d) => Some(d.policy()),
            Inner::Remote(_) => None,
        }
    }
}

/// Load the policy to use: the given file, else the system file, else the shipped default.
pub fn load_policy(path: Option<&std::path::Path>) -> Result<Policy, PolicyError> {
    let actions = Command::ACTIONS;
    match path {
        Some(p) => Policy::load(p, actions),
        None if std::path::Path::new(SYSTEM_POLICY).exists() => {
            Policy::load(std::path::Path::new(SYSTEM_POLICY), actions)
        }
        None => Policy::builtin(actions),
    }
}
