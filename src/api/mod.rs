//! The API layer: typed [`Command`]s in, [`Event`]s out.
//!
//! - `command`, `event`, `types`, `reply`, `error`: the data at the boundary.
//! - `dispatch`: the [`Dispatcher`], one `match` with one handler per command, after the policy.
//! - `engine`: the [`Engine`] handle the console and the REST server hold.
//! - `events`: the event bus and the cross-process journal.
//! - `root`: the state directory and its change lock.

mod command;
mod dispatch;
mod engine;
mod error;
mod event;
mod events;
mod handlers;
pub mod http;
mod remote;
mod reply;
mod root;
pub mod types;
mod watch;
pub mod wire;

pub use command::Command;
pub use dispatch::{Caller, Dispatcher, implicit_pull_of, request_of};
pub use engine::{Engine, EngineError, EngineOptions, SYSTEM_POLICY, load_policy};
pub use error::ApiError;
pub use event::{Event, EventRecord};
pub use events::EventBus;
pub use reply::{IoSession, OutputChunk, Reply, SystemInfo, VersionInfo};
pub use root::{RootLock, StateRoot};
pub use types::*;
