//! Container commands: the image manager's snapshots and the runtime, orchestrated here.
//!
//! The runtime keeps an opaque record per container; ours ([`Record`]) holds the name, the
//! image and the request as the user made it. Lifecycle events (started, exited, …) are not
//! published here: every berth process derives them from the runtime's state files (see
//! `api::watch`), so they reach every console whoever caused them, monitors included.

use crate::api::dispatch::Dispatcher;
use crate::api::error::ApiError;
use crate::api::event::Event;
use crate::api::handlers::image::image_error;
use crate::api::reply::{IoSession, OutputChunk, Reply};
use crate::api::root::RootLock;
use crate::api::types::*;
use crate::image::SnapshotMode;
use crate::runtime::net::Net;
use crate::runtime::{self, RuntimeError, Status};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What the API layer keeps about a container, inside the runtime's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    /// Unix seconds.
    pub created: i64,
    /// Where the overlay upper/work dirs live (removed with the container).
    pub snapshot: Option<PathBuf>,
    pub config: ContainerConfig,
    /// The process the container runs, entrypoint and cmd resolved.
    pub args: Vec<String>,
}

/// An exec created and maybe started.
pub(crate) struct ExecEntry {
    container: ContainerId,
    config: ExecConfig,
    running: bool,
    exit_code: Option<i32>,
    pid: Option<u32>,
    /// The PTY master, for resizes.
    master: Option<Arc<std::os::fd::OwnedFd>>,
}

/// The exec table of this engine process (Docker's execs are daemon-local too).
pub(crate) type Execs = Mutex<HashMap<String, ExecEntry>>;

pub(crate) fn runtime_error(context: &str, e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::NotFound { id } => ApiError::NoSuchContainer(ContainerId(id)),
        RuntimeError::AlreadyExists { .. } | RuntimeError::WrongState { .. } => {
            ApiError::Conflict(e.to_string())
        }
        RuntimeError::BadRequest(m) => ApiError::InvalidArgument(m),
        RuntimeError::UnknownCapability { .. }
        | RuntimeError::UnknownSignal { .. }
        | RuntimeError::InvalidId { .. } => ApiError::InvalidArgument(e.to_string()),
        other => ApiError::engine(context, other),
    }
}

fn rid(id: &ContainerId) -> Result<runtime::ContainerId, ApiError> {
    runtime::ContainerId::new(id.as_str()).map_err(|e| runtime_error("reading the container id", e))
}

fn unix_of(rfc: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn nanos_of(rfc: &str) -> i64 {
    time::OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp_nanos() as i64)
        .unwrap_or(0)
}

fn rfc_of_nanos(n: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(n as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The API's view of a runtime state.
pub(crate) fn api_state(st: &runtime::State) -> ContainerState {
    match st.status {
        Status::Creating | Status::Created => ContainerState::Created,
        Status::Running if st.restart_count > 0 && st.started.is_none() => {
            ContainerState::Restarting
        }
        Status::Running => ContainerState::Running,
        Status::Paused => ContainerState::Paused,
        Status::Stopped
            if st.monitor_pid.is_some() && st.exit_code.is_some() && st.restart_count > 0 =>
        {
            ContainerState::Restarting
        }
        // Never ran (or its start failed): still created. A container that ran has exited,
        // also when its exit status is unknown (its monitor died).
        Status::Stopped if st.exit_code.is_none() && st.started.is_none() => {
            ContainerState::Created
        }
        Status::Stopped => ContainerState::Exited,
    }
}

/// The exit code to show: the recorded one; -1 for a container that exited with its status
/// unknown (its monitor died; the error says so), never a made-up 0; 0 before any exit.
pub(crate) fn shown_exit_code(st: &runtime::State) -> i32 {
    match (st.exit_code, api_state(st)) {
        (Some(c), _) => c,
        (None, ContainerState::Exited) => -1,
        (None, _) => 0,
    }
}

/// The error to show: the recorded one, or that the container runs without its monitor.
pub(crate) fn shown_error(st: &runtime::State) -> String {
    if runtime::unmonitored(st) {
        return "the container's monitor is gone: it runs unmonitored (stop and rm work; its \
                exit status will be unknown)"
            .into();
    }
    st.error.clone().unwrap_or_default()
}

/// Removes a container's snapshot. It is renamed out of the way at once, to a trash name that
/// carries this process's pid, and deleted in the background: deleting an upper dir full of
/// files is slow on some disks, and not on the caller's time (the dispatcher waits for it when
/// it is dropped). Should the process end first anyway, `system check --repair` finds the trash
/// of a process that is gone.
fn discard_snapshot(d: &Dispatcher, dir: PathBuf) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let trash = parent.join(format!(
        ".trash-{}-{}",
        std::process::id(),
        name.to_string_lossy()
    ));
    let doomed = match std::fs::rename(&dir, &trash) {
        Ok(()) => trash,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(_) => dir,
    };
    d.in_background(move || {
        let _ = std::fs::remove_dir_all(doomed);
    });
}

fn new_id() -> String {
    let a: u128 = rand::random();
    let b: u128 = rand::random();
    format!("{a:032x}{b:032x}")
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "proud", "quiet", "rapid", "sharp", "tidy", "vivid", "witty", "zesty", "bold",
];
const NOUNS: &[&str] = &[
    "anchor", "buoy", "cabin", "dock", "ferry", "galley", "harbor", "island", "jetty", "keel",
    "lagoon", "mast", "narwhal", "oar", "pier", "quay", "reef", "sail", "tide", "wharf",
];

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Docker's signal names (`KILL`, `SIGHUP`) and numbers, as the runtime reads them.
pub(crate) fn signal_number(s: &str) -> Result<i32, ApiError> {
    runtime::signals::parse(s).map_err(|e| ApiError::InvalidArgument(e.to_string()))
}

/// Merge env lists: later `KEY=` entries replace earlier ones.
fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in base.iter().chain(over) {
        let key = e.split('=').next().unwrap_or(e);
        out.retain(|o| o.split('=').next() != Some(key));
        out.push(e.clone());
    }
    out
}

/// Docker's rule for the process: `--entrypoint` replaces the image's and clears its CMD;
/// a command replaces CMD.
fn process_args(cfg: &ContainerConfig, img: &crate::image::RunConfig) -> Vec<String> {
    let entry = match &cfg.entrypoint {
        Some(e) => e.clone(),
        None => img.entrypoint.clone().unwrap_or_default(),
    };
    let cmd = if !cfg.cmd.is_empty() {
        cfg.cmd.clone()
    } else if cfg.entrypoint.is_some() {
        Vec::new()
    } else {
        img.cmd.clone().unwrap_or_default()
    };
    entry.into_iter().chain(cmd).collect()
}

/// `uid[:gid]` or `name[:group]`, resolved against the rootfs' passwd and group files (read
/// inside the rootfs, top layer first) by the runtime's resolver.
fn resolve_user(rootfs: &runtime::Rootfs, spec: &str) -> Result<(u32, u32, Vec<u32>), ApiError> {
    runtime::resolve_user(rootfs, spec)
        .map(|u| (u.uid, u.gid, u.additional_gids))
        .map_err(|e| runtime_error("resolving the user", e))
}

/// `-v` specs: `/host:/ctr[:ro|rw][,propagation]`. Named volumes come with the volumes issue.
fn binds_of(cfg: &ContainerConfig) -> Result<Vec<runtime::BindMount>, ApiError> {
    let mut out = Vec::new();
    for v in &cfg.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            // An anonymous volume: named when the container is created.
            [d] if d.starts_with('/') => continue,
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => {
                return Err(ApiError::InvalidArgument(format!(
                    "invalid volume spec {v:?}: expected SRC:DST[:OPTS]"
                )));
            }
        };
        // A bare name is a named volume: its relative source is resolved to the volume's
        // directory when the container is created (resolve_volume_binds).
        if !src.starts_with('/') && !crate::api::handlers::volume::valid_volume_name(src) {
            return Err(ApiError::InvalidArgument(format!(
                "invalid volume spec {v:?}: {src:?} is neither an absolute path nor a volume name"
            )));
        }
        if !dst.starts_with('/') {
            return Err(ApiError::InvalidArgument(format!(
                "invalid volume spec {v:?}: the destination must be absolute"
            )));
        }
        let mut readonly = false;
        let mut propagation = None;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => readonly = true,
                "rw" => readonly = false,
                "z" | "Z" => {}
                "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {
                    propagation = Some(o.to_owned())
                }
                _ => {
                    return Err(ApiError::InvalidArgument(format!(
                        "invalid volume option {o:?} in {v:?}"
                    )));
                }
            }
        }
        out.push(runtime::BindMount {
            source: src.into(),
            destination: dst.into(),
            readonly,
            propagation,
        });
    }
    Ok(out)
}

fn tmpfs_of(cfg: &ContainerConfig) -> Vec<runtime::TmpfsMount> {
    cfg.tmpfs
        .iter()
        .map(|t| {
            let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
            runtime::TmpfsMount {
                destination: dst.into(),
                options: opts
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }
        })
        .collect()
}

fn seccomp_of(cfg: &ContainerConfig) -> runtime::SeccompChoice {
    for o in &cfg.security_opt {
        if let Some(v) = o
            .strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
        {
            return if v == "unconfined" {
                runtime::SeccompChoice::Unconfined
            } else {
                runtime::SeccompChoice::File(v.into())
            };
        }
    }
    runtime::SeccompChoice::Default
}

impl Dispatcher {
    fn rt(&self) -> runtime::Runtime {
        self.runtime().clone()
    }

    /// Run blocking runtime work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(runtime::Runtime) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let rt = self.rt();
        tokio::task::spawn_blocking(move || f(rt))
            .await
            .map_err(|e| ApiError::engine("runtime task", e))?
    }

    pub(crate) fn record_of(&self, id: &runtime::ContainerId) -> Option<Record> {
        self.runtime().record_as(id)
    }

    /// Full id, unique id prefix, or name → the container's id.
    pub(crate) fn resolve_container(
        &self,
        what: &ContainerId,
    ) -> Result<runtime::ContainerId, ApiError> {
        let s = what.as_str().trim_start_matches('/');
        if s.len() == 64
            && let Ok(id) = runtime::ContainerId::new(s)
            && self.runtime().state(&id).is_ok()
        {
            return Ok(id);
        }
        let states = self
            .runtime()
            .list()
            .map_err(|e| runtime_error("listing containers", e))?;
        if let Some(st) = states
            .iter()
            .find(|st| self.record_of(&st.id).is_some_and(|r| r.name == s))
        {
            return Ok(st.id.clone());
        }
        let matches: Vec<&runtime::State> = states
            .iter()
            .filter(|st| !s.is_empty() && st.id.as_str().starts_with(s))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(ApiError::NoSuchContainer(what.clone())),
            _ => Err(ApiError::InvalidArgument(format!(
                "multiple containers match the prefix {s}"
            ))),
        }
    }

    fn summary(&self, st: &runtime::State) -> ContainerSummary {
        self.summary_with(st, Net::open(self.root().path()).ok().as_ref())
    }

    /// [`Self::summary`] with the network state opened once for a whole list.
    fn summary_with(&self, st: &runtime::State, net: Option<&Net>) -> ContainerSummary {
        let rec = self.record_of(&st.id);
        let state = api_state(st);
        ContainerSummary {
            id: ContainerId(st.id.as_str().to_owned()),
            name: rec.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
            image: rec.as_ref().map(|r| r.image.clone()).unwrap_or_default(),
            command: rec.as_ref().map(|r| r.args.join(" ")).unwrap_or_default(),
            created: rec
                .as_ref()
                .map(|r| r.created)
                .or_else(|| unix_of(&st.created))
                .unwrap_or(0),
            state,
            started_at: st.started.as_deref().and_then(unix_of),
            finished_at: st.finished.as_deref().and_then(unix_of),
            exit_code: if state == ContainerState::Exited {
                st.exit_code
            } else {
                None
            },
            oom_killed: st.oom_killed,
            pid: (st.pid > 0 && state.is_alive()).then_some(st.pid as u32),
            ports: net
                .and_then(|n| n.attachment(st.id.as_str()))
                .map(|a| {
                    a.ports
                        .iter()
                        .map(|p| PortMapping {
                            host_ip: p.host_ip.map(|i| i.to_string()),
                            host_port: p.host_port,
                            container_port: p.container_port,
                            protocol: p.proto.as_str().to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub(crate) async fn container_list(&self, all: bool) -> Result<Reply, ApiError> {
        // A few files per container, and a wait on the lock of one being changed: never on
        // an async worker's time (a console listing 200 while they were removed stalled its
        // keys, tests/load).
        crate::api::dispatch::blocking_here(|| {
            // One state at a time, straight into its summary: the list never holds every
            // container's full state and record at once (the console's RSS with 1,000).
            let net = Net::open(self.root().path()).ok();
            let mut list: Vec<ContainerSummary> = self
                .runtime()
                .list_map(|st| {
                    let c = self.summary_with(&st, net.as_ref());
                    (all || c.state.is_alive()).then_some(c)
                })
                .map_err(|e| runtime_error("listing containers", e))?
                .into_iter()
                .flatten()
                .collect();
            list.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
            if list.len() >= 100 {
                // Give the transient parse garbage back (glibc keeps freed pages otherwise).
                crate::runtime::sys::release_free_memory();
            }
            Ok(Reply::Containers(list))
        })
    }

    /// How many containers use each image id.
    pub(crate) fn container_image_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        if let Ok(states) = self.runtime().list() {
            for st in states {
                if let Some(r) = self.record_of(&st.id) {
                    *m.entry(r.image_id).or_insert(0) += 1;
                }
            }
        }
        m
    }

    pub(crate) async fn container_create(
        &self,
        config: ContainerConfig,
        pull: bool,
    ) -> Result<Reply, ApiError> {
        if let Some(n) = &config.name
            && !valid_name(n)
        {
            return Err(ApiError::InvalidArgument(format!(
                "invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        // Cheap checks first: nothing is pulled for a request that cannot be carried out.
        self.check_network(&config)?;
        binds_of(&config)?;
        // The image, pulled first when missing and allowed.
        let image = config.image.clone();
        let found = self.images().inspect(image.as_str());
        match found {
            Err(crate::image::ImageError::NotFound { .. }) if pull => {
                self.image_pull(image.clone(), config.platform.clone())
                    .await?;
            }
            Err(e) => return Err(image_error(&format!("using {image}"), e)),
            Ok(_) => {}
        }
        let id = new_id();
        let snapshot_dir = self.root().path().join("snapshots").join(&id);
        // Under the root's change lock from the snapshot on: an image prune cannot take the
        // layers away before the container is recorded, and a snapshot without its container
        // is, for `system check` (which takes the lock too), what a killed create left.
        let lock = self.lock().await?;
        crate::runtime::trace_time("create: locked");
        let (img, dir) = (image.0.clone(), snapshot_dir.clone());
        let prepared = self
            .images_blocking(move |s| s.prepare_rootfs(&img, &dir))
            .await?;
        crate::runtime::trace_time("create: rootfs prepared");
        let result = match prepared {
            Ok(prepared) => {
                self.create_with_rootfs(&id, config, &prepared, &snapshot_dir, &lock)
                    .await
            }
            Err(e) => Err(image_error(
                &format!("preparing the root filesystem from {image}"),
                e,
            )),
        };
        if result.is_err() {
            // A snapshot nothing ran on is small: removed before the error is returned (in the
            // background, a one-shot CLI would exit first and leave it behind).
            let _ = std::fs::remove_dir_all(&snapshot_dir);
        }
        drop(lock);
        result
    }

    async fn create_with_rootfs(
        &self,
        id: &str,
        config: ContainerConfig,
        prepared: &crate::image::snapshot::PreparedRootfs,
        snapshot_dir: &std::path::Path,
        lock: &RootLock,
    ) -> Result<Reply, ApiError> {
        let img = &prepared.config.config;
        // The image's VOLUMEs the user did not mount get anonymous volumes, seeded from the
        // image (as in Docker); they are named in the config, so they count as in use.
        let config = crate::api::handlers::volume::with_anonymous_volumes(
            config,
            img.volumes.as_deref().unwrap_or_default(),
        );
        let args = process_args(&config, img);
        if args.is_empty() {
            return Err(ApiError::InvalidArgument(
                "no command specified (the image has no CMD or ENTRYPOINT)".into(),
            ));
        }
        let mut env = merge_env(&img.env.clone().unwrap_or_default(), &config.env);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, runtime::request::DEFAULT_PATH.to_owned());
        }
        let hostname = config
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_owned());
        env.insert(0, format!("HOSTNAME={hostname}"));
        if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let user = config
            .user
            .clone()
            .or_else(|| img.user.clone())
            .filter(|u| !u.is_empty());
        let rootfs = match &prepared.rootfs {
            crate::image::Rootfs::Overlay {
                lowerdirs,
                upperdir,
                workdir,
            } => runtime::Rootfs::Overlay(runtime::OverlayRootfs {
                lowerdirs: lowerdirs.clone(),
                upperdir: upperdir.clone(),
                workdir: workdir.clone(),
            }),
            crate::image::Rootfs::Copy { dir } => runtime::Rootfs::Dir(dir.clone()),
        };
        let (uid, gid, additional_gids) = match &user {
            Some(u) => resolve_user(&rootfs, u)?,
            None => (0, 0, Vec::new()),
        };
        // The namespace and files come from network_attach, under the lock below.
        let network = runtime::NetworkMode::None;
        let restart = match config.restart {
            RestartPolicy::No => runtime::RestartPolicy::No,
            RestartPolicy::Always => runtime::RestartPolicy::Always,
            RestartPolicy::UnlessStopped => runtime::RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure { max_retries } => {
                runtime::RestartPolicy::OnFailure { max_retries }
            }
        };
        let name = match &config.name {
            Some(n) => n.clone(),
            None => format!(
                "{}_{}",
                ADJECTIVES[rand::random_range(0..ADJECTIVES.len())],
                NOUNS[rand::random_range(0..NOUNS.len())]
            ),
        };
        let record = Record {
            name: name.clone(),
            image: config.image.0.clone(),
            image_id: prepared.image.to_string(),
            created: time::OffsetDateTime::now_utc().unix_timestamp(),
            snapshot: Some(snapshot_dir.to_owned()),
            config: config.clone(),
            args: args.clone(),
        };
        let mut req = runtime::CreateRequest {
            id: Some(
                runtime::ContainerId::new(id).map_err(|e| runtime_error("new container id", e))?,
            ),
            rootfs: Some(rootfs),
            args,
            env,
            cwd: config
                .workdir
                .clone()
                .or_else(|| img.working_dir.clone())
                .filter(|w| !w.is_empty()),
            uid,
            gid,
            additional_gids,
            tty: config.tty,
            open_stdin: config.open_stdin,
            hostname: Some(hostname),
            memory: config.memory.map(|m| m as i64),
            memory_swap: config.memory_swap,
            cpus: config.cpus,
            cpu_shares: config.cpu_shares,
            cpuset_cpus: config.cpuset_cpus.clone(),
            pids_limit: config.pids_limit,
            cap_add: config.cap_add.clone(),
            cap_drop: config.cap_drop.clone(),
            privileged: config.privileged,
            read_only: config.read_only,
            no_new_privileges: config.security_opt.iter().any(|o| {
                o == "no-new-privileges"
                    || o == "no-new-privileges:true"
                    || o == "no-new-privileges=true"
            }),
            seccomp: seccomp_of(&config),
            binds: binds_of(&config)?,
            tmpfs: tmpfs_of(&config),
            network,
            restart,
            stop_signal: config
                .stop_signal
                .clone()
                .or_else(|| img.stop_signal.clone()),
            stop_timeout: config.stop_timeout,
            auto_remove: config.auto_remove,
            remove_with: vec![snapshot_dir.to_owned()],
            annotations: Default::default(),
            record: serde_json::to_value(&record)
                .map_err(|e| ApiError::engine("recording the container", e))?,
        };
        // Names are unique: checked and created under the root's change lock (held).
        let taken = self
            .runtime()
            .list()
            .map_err(|e| runtime_error("listing containers", e))?
            .iter()
            .any(|st| self.record_of(&st.id).is_some_and(|r| r.name == name));
        if taken {
            return Err(ApiError::Conflict(format!(
                "the container name {name:?} is already in use"
            )));
        }
        // Named volumes and the network, prepared under the lock (a sweep never sees a
        // network attachment whose container is not created yet).
        req.binds = self.resolve_volume_binds(std::mem::take(&mut req.binds), &prepared.rootfs)?;
        self.sweep_networks(lock)?;
        crate::runtime::trace_time("create: networks swept");
        let exposed = img.exposed_ports.clone().unwrap_or_default();
        let hostname = req.hostname.clone().unwrap_or_default();
        let (mode, files) = self.network_attach(id, &name, &hostname, &config, &exposed)?;
        req.network = mode;
        // The user's own binds of these files win.
        let own: Vec<PathBuf> = req.binds.iter().map(|b| b.destination.clone()).collect();
        req.binds
            .extend(files.into_iter().filter(|f| !own.contains(&f.destination)));
        crate::runtime::trace_time("create: network attached");
        let created = self
            .blocking(move |rt| {
                rt.create(&req)
                    .map_err(|e| runtime_error("creating the container", e))
            })
            .await;
        let st = match created {
            Ok(st) => st,
            Err(e) => {
                if let Ok(rid) = runtime::ContainerId::new(id) {
                    let _ = self.network_detach(&rid);
                }
                return Err(e);
            }
        };
        Ok(Reply::ContainerId(ContainerId(st.id.as_str().to_owned())))
    }

    pub(crate) async fn container_start(&self, id: ContainerId) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let st = self
            .runtime()
            .state(&rid)
            .map_err(|e| runtime_error("starting", e))?;
        if matches!(st.status, Status::Running | Status::Paused) {
            return Err(ApiError::NotModified(format!(
                "container {id} is already running"
            )));
        }
        self.blocking(move |rt| {
            rt.start(&rid)
                .map(drop)
                .map_err(|e| runtime_error("starting the container", e))
        })
        .await?;
        Ok(Reply::Done)
    }

    pub(crate) async fn container_stop(
        &self,
        id: ContainerId,
        timeout: Option<u32>,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let st = self
            .runtime()
            .state(&rid)
            .map_err(|e| runtime_error("stopping", e))?;
        if !matches!(st.status, Status::Running | Status::Paused) && st.monitor_pid.is_none() {
            return Err(ApiError::NotModified(format!(
                "container {id} is not running"
            )));
        }
        let t = timeout.map(|t| std::time::Duration::from_secs(t.into()));
        self.blocking(move |rt| {
            rt.stop(&rid, t)
                .map(drop)
                .map_err(|e| runtime_error("stopping the container", e))
        })
        .await?;
        Ok(Reply::Done)
    }

    pub(crate) async fn container_kill(
        &self,
        id: ContainerId,
        signal: String,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let sig = signal_number(if signal.is_empty() { "KILL" } else { &signal })?;
        let st = self
            .runtime()
            .state(&rid)
            .map_err(|e| runtime_error("killing", e))?;
        if !matches!(st.status, Status::Running | Status::Paused) {
            return Err(ApiError::Conflict(format!("container {id} is not running")));
        }
        self.blocking(move |rt| {
            rt.kill(&rid, sig)
                .map_err(|e| runtime_error("signalling the container", e))
        })
        .await?;
        Ok(Reply::Done)
    }

    pub(crate) async fn container_restart(
        &self,
        id: ContainerId,
        timeout: Option<u32>,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let t = timeout.map(|t| std::time::Duration::from_secs(t.into()));
        self.blocking(move |rt| {
            rt.restart(&rid, t)
                .map(drop)
                .map_err(|e| runtime_error("restarting the container", e))
        })
        .await?;
        Ok(Reply::Done)
    }

    pub(crate) async fn container_pause(
        &self,
        id: ContainerId,
        pause: bool,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        self.blocking(move |rt| {
            if pause {
                rt.pause(&rid)
            } else {
                rt.unpause(&rid)
            }
            .map(drop)
            .map_err(|e| {
                runtime_error(
                    if pause {
                        "pausing the container"
                    } else {
                        "unpausing the container"
                    },
                    e,
                )
            })
        })
        .await?;
        Ok(Reply::Done)
    }

    pub(crate) async fn container_remove(
        &self,
        id: ContainerId,
        force: bool,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let snapshot = self.record_of(&rid).and_then(|r| r.snapshot);
        let removed = rid.clone();
        self.blocking(move |rt| {
            rt.remove(&rid, force)
                .map_err(|e| runtime_error("removing the container", e))
        })
        .await?;
        self.network_detach(&removed)?;
        if let Some(s) = snapshot {
            discard_snapshot(self, s);
        }
        Ok(Reply::Done)
    }

    pub(crate) async fn container_rename(
        &self,
        id: ContainerId,
        name: String,
    ) -> Result<Reply, ApiError> {
        if !valid_name(&name) {
            return Err(ApiError::InvalidArgument(format!(
                "invalid container name {name:?}"
            )));
        }
        let rid = self.resolve_container(&id)?;
        let _lock = self.lock().await?;
        let states = self
            .runtime()
            .list()
            .map_err(|e| runtime_error("listing containers", e))?;
        if states
            .iter()
            .any(|st| st.id != rid && self.record_of(&st.id).is_some_and(|r| r.name == name))
        {
            return Err(ApiError::Conflict(format!(
                "the container name {name:?} is already in use"
            )));
        }
        let mut rec = self
            .record_of(&rid)
            .ok_or_else(|| ApiError::NoSuchContainer(id.clone()))?;
        rec.name = name.clone();
        let path = runtime::state::ContainerDir::new(self.runtime().root(), &rid).record();
        let data =
            serde_json::to_vec(&rec).map_err(|e| ApiError::engine("recording the container", e))?;
        runtime::state::write_atomic(&path, &data).map_err(|e| runtime_error("renaming", e))?;
        self.bus().publish(Event::ContainerRenamed {
            id: ContainerId(rid.as_str().to_owned()),
            name,
        });
        Ok(Reply::Done)
    }

    pub(crate) async fn container_wait(
        &self,
        id: ContainerId,
        condition: WaitCondition,
    ) -> Result<Reply, ApiError> {
        let rid = match self.resolve_container(&id) {
            Ok(rid) => rid,
            // Gone already (auto-removed): its exit is on record when it was a full id.
            Err(e @ ApiError::NoSuchContainer(_)) => {
                let record = runtime::ContainerId::new(id.as_str())
                    .ok()
                    .and_then(|r| self.runtime().exit_record(&r));
                return match record {
                    Some(info) => Ok(Reply::ExitCode(info.exit_code)),
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let st = self
            .runtime()
            .state(&rid)
            .map_err(|e| runtime_error("waiting", e))?;
        if condition == WaitCondition::NotRunning
            && !matches!(st.status, Status::Running | Status::Paused)
            && st.monitor_pid.is_none()
        {
            return Ok(Reply::ExitCode(shown_exit_code(&st)));
        }
        let root = self.runtime().root().to_owned();
        self.blocking(move |rt| {
            // `--rm`: the monitor answers once the container is removed, with its exit.
            if condition == WaitCondition::Removed
                && let Some(info) = rt.wait_removed(&rid)
                && rt.state(&rid).is_err()
            {
                return Ok(Reply::ExitCode(info.exit_code));
            }
            // Asked of the monitor at once, even before a start: it answers at the exit, before
            // an auto-removal, so the exit code cannot be lost to a fast container.
            let info = match rt.wait(&rid) {
                Ok(i) => i,
                Err(RuntimeError::NotFound { .. }) => return Ok(Reply::ExitCode(0)),
                Err(e) => return Err(runtime_error("waiting for the container", e)),
            };
            if condition == WaitCondition::Removed {
                // Watched from before the last look, so no removal is missed.
                let mut watcher =
                    runtime::Watcher::new(&root).map_err(|e| runtime_error("watching", e))?;
                while rt.state(&rid).is_ok() {
                    let _ = watcher.read_changes();
                }
            }
            Ok(Reply::ExitCode(info.exit_code))
        })
        .await
    }

    pub(crate) async fn container_logs(
        &self,
        id: ContainerId,
        options: LogOptions,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let opts = runtime::LogOptions {
            follow: options.follow,
            tail: options.tail,
            since: options.since.map(rfc_of_nanos),
            until: options.until.map(rfc_of_nanos),
            stdout: options.stdout,
            stderr: options.stderr,
        };
        let logs = self
            .runtime()
            .logs(&rid, opts)
            .map_err(|e| runtime_error("reading the logs", e))?;
        let (tx, rx) = mpsc::channel(1024);
        std::thread::Builder::new()
            .name("berth-logs".into())
            .spawn(move || {
                for entry in logs {
                    let Ok(e) = entry else { break };
                    let line = LogLine {
                        stream: if e.stream == runtime::Stream::Stderr {
                            Stream::Stderr
                        } else {
                            Stream::Stdout
                        },
                        time: nanos_of(&e.time),
                        line: e.log.strip_suffix('\n').unwrap_or(&e.log).to_owned(),
                    };
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| ApiError::engine("starting the log reader", e))?;
        Ok(Reply::Logs(rx))
    }

    pub(crate) async fn container_stats(
        &self,
        id: ContainerId,
        stream: bool,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let api_id = ContainerId(rid.as_str().to_owned());
        let rt = self.rt();
        // Fail now, not in the stream, for a container that is not there.
        rt.state(&rid)
            .map_err(|e| runtime_error("reading stats", e))?;
        let (tx, rx) = mpsc::channel(16);
        std::thread::Builder::new()
            .name("berth-stats".into())
            .spawn(move || {
                let mut prev: Option<(u64, u64)> = None;
                for s in rt.stats_stream(&rid, std::time::Duration::from_secs(1)) {
                    let Ok(s) = s else { break };
                    let sample = sample_of(&api_id, &s, prev);
                    prev = Some((s.cgroup.cpu_usage_ns, s.system_cpu_ns));
                    if tx.blocking_send(sample).is_err() || !stream {
                        break;
                    }
                }
            })
            .map_err(|e| ApiError::engine("starting the stats reader", e))?;
        Ok(Reply::Stats(rx))
    }

    /// One sample of every running (or paused) container, CPU % measured over
    /// [`STATS_ALL_GAP`] between two readings, so a caller needs no state of its own.
    pub(crate) async fn container_stats_all(&self) -> Result<Reply, ApiError> {
        self.blocking(|rt| {
            // Only the ids are kept: every 2 s while a console shows the list, so the states
            // are dropped as they are read (as for the container list).
            let alive: Vec<runtime::ContainerId> = rt
                .list_map(|s| matches!(s.status, Status::Running | Status::Paused).then_some(s.id))
                .map_err(|e| runtime_error("listing containers", e))?
                .into_iter()
                .flatten()
                .collect();
            // A container that stops between the readings is left out, not an error.
            let first: HashMap<String, (u64, u64)> = alive
                .iter()
                .filter_map(|id| {
                    let s = rt.stats(id).ok()?;
                    Some((
                        id.as_str().to_owned(),
                        (s.cgroup.cpu_usage_ns, s.system_cpu_ns),
                    ))
                })
                .collect();
            if !first.is_empty() {
                std::thread::sleep(STATS_ALL_GAP);
            }
            let samples = alive
                .iter()
                .filter_map(|id| {
                    let prev = *first.get(id.as_str())?;
                    let s = rt.stats(id).ok()?;
                    Some(sample_of(
                        &ContainerId(id.as_str().to_owned()),
                        &s,
                        Some(prev),
                    ))
                })
                .collect();
            Ok(Reply::StatsAll(samples))
        })
        .await
    }

    pub(crate) async fn container_top(&self, id: ContainerId) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let top = self
            .blocking(move |rt| {
                rt.top(&rid)
                    .map_err(|e| runtime_error("listing processes", e))
            })
            .await?;
        Ok(Reply::Json(serde_json::json!({
            "Titles": top.titles,
            "Processes": top.processes.iter().map(|p| p.columns()).collect::<Vec<_>>(),
        })))
    }

    pub(crate) async fn container_inspect(&self, id: ContainerId) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let st = self
            .runtime()
            .state(&rid)
            .map_err(|e| runtime_error("inspecting", e))?;
        let rec = self.record_of(&rid);
        let summary = self.summary(&st);
        let cfg = rec.as_ref().map(|r| r.config.clone()).unwrap_or_default();
        let spec = self.runtime().spec(&rid).ok();
        let process = spec
            .as_ref()
            .and_then(|s| serde_json::to_value(&s.process).ok())
            .unwrap_or_default();
        let args: Vec<String> = rec.as_ref().map(|r| r.args.clone()).unwrap_or_default();
        let state = summary.state;
        Ok(Reply::Json(serde_json::json!({
            "Id": st.id.as_str(),
            "Created": st.created,
            "Path": args.first().cloned().unwrap_or_default(),
            "Args": args.iter().skip(1).collect::<Vec<_>>(),
            "State": {
                "Status": state.as_str(),
                "Running": matches!(state, ContainerState::Running | ContainerState::Paused),
                "Paused": state == ContainerState::Paused,
                "Restarting": state == ContainerState::Restarting,
                "OOMKilled": st.oom_killed,
                "Dead": false,
                "Pid": if state.is_alive() { st.pid } else { 0 },
                "ExitCode": shown_exit_code(&st),
                "Error": shown_error(&st),
                "StartedAt": st.started.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "FinishedAt": st.finished.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            },
            "Image": rec.as_ref().map(|r| r.image_id.clone()).unwrap_or_default(),
            "Name": format!("/{}", summary.name),
            "RestartCount": st.restart_count,
            "Driver": if self.images().snapshot_mode() == SnapshotMode::Overlay { "overlay" } else { "copy" },
            "HostConfig": {
                "Binds": cfg.volumes,
                "PortBindings": crate::api::handlers::network::port_bindings_json(&cfg),
                "PublishAllPorts": cfg.publish_all,
                "NetworkMode": match &cfg.network { NetworkMode::None => "none".to_owned(), NetworkMode::Host => "host".into(), NetworkMode::Bridge => "bridge".into(), NetworkMode::Named(n) => n.clone(), NetworkMode::Container(c) => format!("container:{c}") },
                "RestartPolicy": match cfg.restart {
                    RestartPolicy::No => serde_json::json!({"Name": "no", "MaximumRetryCount": 0}),
                    RestartPolicy::Always => serde_json::json!({"Name": "always", "MaximumRetryCount": 0}),
                    RestartPolicy::UnlessStopped => serde_json::json!({"Name": "unless-stopped", "MaximumRetryCount": 0}),
                    RestartPolicy::OnFailure { max_retries } => serde_json::json!({"Name": "on-failure", "MaximumRetryCount": max_retries.unwrap_or(0)}),
                },
                "AutoRemove": cfg.auto_remove,
                "Privileged": cfg.privileged,
                "ReadonlyRootfs": cfg.read_only,
                "CapAdd": cfg.cap_add,
                "CapDrop": cfg.cap_drop,
                "SecurityOpt": cfg.security_opt,
                "Memory": cfg.memory.unwrap_or(0),
                "MemorySwap": cfg.memory_swap.unwrap_or(0),
                "NanoCpus": cfg.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
                "CpusetCpus": cfg.cpuset_cpus.clone().unwrap_or_default(),
                "PidsLimit": cfg.pids_limit,
                "Tmpfs": cfg.tmpfs.iter().map(|t| {
                    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
                    (dst.to_owned(), serde_json::Value::String(opts.to_owned()))
                }).collect::<serde_json::Map<_, _>>(),
            },
            "Config": {
                "Hostname": cfg.hostname.clone().unwrap_or_else(|| st.id.as_str()[..12].to_owned()),
                "User": cfg.user.clone().unwrap_or_default(),
                "Tty": cfg.tty,
                "OpenStdin": cfg.open_stdin,
                "Env": process.get("env").cloned().unwrap_or_default(),
                "Cmd": if cfg.cmd.is_empty() { serde_json::Value::Null } else { serde_json::json!(cfg.cmd) },
                "Entrypoint": cfg.entrypoint,
                "Image": rec.as_ref().map(|r| r.image.clone()).unwrap_or_default(),
                "WorkingDir": process.get("cwd").cloned().unwrap_or_default(),
                "Labels": cfg.labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "StopSignal": cfg.stop_signal,
            },
            "LogPath": runtime::state::ContainerDir::new(self.runtime().root(), &rid).log(),
            "Mounts": self.mounts_json(&cfg),
            "NetworkSettings": self.network_settings(st.id.as_str()),
        })))
    }

    pub(crate) async fn container_prune(&self) -> Result<Reply, ApiError> {
        let states = self
            .runtime()
            .list()
            .map_err(|e| runtime_error("listing containers", e))?;
        let mut removed = Vec::new();
        for st in states {
            if matches!(
                api_state(&st),
                ContainerState::Exited | ContainerState::Created | ContainerState::Dead
            ) && st.monitor_pid.is_none()
            {
                let id = ContainerId(st.id.as_str().to_owned());
                if self.container_remove(id.clone(), false).await.is_ok() {
                    removed.push(id.0);
                }
            }
        }
        Ok(Reply::Pruned { removed, freed: 0 })
    }

    pub(crate) async fn container_resize(
        &self,
        id: ContainerId,
        height: u16,
        width: u16,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        self.runtime()
            .resize(
                &rid,
                runtime::WinSize {
                    rows: height,
                    cols: width,
                },
            )
            .map_err(|e| runtime_error("resizing the terminal", e))?;
        Ok(Reply::Done)
    }

    pub(crate) async fn container_attach(
        &self,
        id: ContainerId,
        stdin: bool,
    ) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&id)?;
        let tty = self.record_of(&rid).is_some_and(|r| r.config.tty);
        let stream = self
            .runtime()
            .attach(&rid, stdin)
            .map_err(|e| runtime_error("attaching", e))?;
        let (out_tx, out_rx) = mpsc::channel(256);
        let reader = stream
            .try_clone()
            .map_err(|e| ApiError::engine("attaching", e))?;
        std::thread::spawn(move || pump_attach(reader, tty, out_tx));
        let stdin_tx = if stdin {
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            std::thread::spawn(move || pump_stdin(rx, stream));
            Some(tx)
        } else {
            None
        };
        Ok(Reply::Io(IoSession {
            stdin: stdin_tx,
            output: out_rx,
            tty,
        }))
    }

    pub(crate) async fn exec_create(&self, config: ExecConfig) -> Result<Reply, ApiError> {
        let rid = self.resolve_container(&config.container)?;
        let st = self
            .runtime()
            .state(&rid)
            .map_err(|e| runtime_error("exec", e))?;
        if st.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "container {} is not running",
                config.container
            )));
        }
        if config.cmd.is_empty() {
            return Err(ApiError::InvalidArgument("no command given to exec".into()));
        }
        let exec_id = new_id();
        let entry = ExecEntry {
            container: ContainerId(rid.as_str().to_owned()),
            config,
            running: false,
            exit_code: None,
            pid: None,
            master: None,
        };
        self.execs()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(exec_id.clone(), entry);
        Ok(Reply::ExecId(exec_id))
    }

    pub(crate) async fn exec_start(
        &self,
        exec_id: String,
        detach: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<Reply, ApiError> {
        let (container, config) = {
            let mut execs = self.execs().lock().unwrap_or_else(|p| p.into_inner());
            let e = execs
                .get_mut(&exec_id)
                .ok_or_else(|| ApiError::NoSuchExec(exec_id.clone()))?;
            if e.running || e.exit_code.is_some() {
                return Err(ApiError::Conflict(format!(
                    "exec {exec_id} has already run"
                )));
            }
            e.running = true;
            (e.container.clone(), e.config.clone())
        };
        let rid = rid(&container)?;
        // A named user is looked up in the container's own files (its upper dir first), as
        // Docker does; a numeric one needs no lookup.
        let (uid, gid, additional_gids) = match config.user.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => {
                let spec = self
                    .runtime()
                    .spec(&rid)
                    .map_err(|e| runtime_error("exec", e))?;
                let rootfs = match spec.overlay().map_err(|e| runtime_error("exec", e))? {
                    Some(o) => runtime::Rootfs::Overlay(o),
                    None => runtime::Rootfs::Dir(spec.root.map(|r| r.path).unwrap_or_default()),
                };
                let (a, b, c) = resolve_user(&rootfs, u)?;
                (Some(a), Some(b), c)
            }
            None => (None, None, Vec::new()),
        };
        let req = runtime::ExecRequest {
            args: config.cmd.clone(),
            env: config.env.clone(),
            cwd: config.workdir.clone(),
            uid,
            gid,
            additional_gids,
            tty: config.tty,
            size: console_size.map(|(h, w)| runtime::WinSize { rows: h, cols: w }),
            process: None,
            pid_file: None,
        };
        let mode = if config.tty {
            runtime::StdioMode::Pty
        } else {
            runtime::StdioMode::Pipes
        };
        let started = self
            .blocking(move |rt| {
                rt.exec(&rid, &req, mode)
                    .map_err(|e| runtime_error("exec", e))
            })
            .await;
        let mut proc = match started {
            Ok(p) => p,
            Err(e) => {
                if let Some(x) = self
                    .execs()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&exec_id)
                {
                    x.running = false;
                    x.exit_code = Some(126);
                }
                return Err(e);
            }
        };
        let master = proc.master.take().map(Arc::new);
        {
            let mut execs = self.execs().lock().unwrap_or_else(|p| p.into_inner());
            if let Some(x) = execs.get_mut(&exec_id) {
                x.pid = Some(proc.pid() as u32);
                x.master = master.clone();
            }
        }
        self.bus().publish(Event::ExecStarted {
            id: container.clone(),
            exec_id: exec_id.clone(),
        });
        let (out_tx, out_rx) = mpsc::channel(256);
        let mut stdin_tx = None;
        let tty = config.tty;
        let mut readers = Vec::new();
        if let Some(m) = &master {
            let reader =
                std::fs::File::from(m.try_clone().map_err(|e| ApiError::engine("exec", e))?);
            let tx = out_tx.clone();
            readers.push(std::thread::spawn(move || {
                pump_reader(reader, Stream::Stdout, tx)
            }));
            if config.stdin && !detach {
                let writer =
                    std::fs::File::from(m.try_clone().map_err(|e| ApiError::engine("exec", e))?);
                let (tx, rx) = mpsc::channel::<Bytes>(64);
                std::thread::spawn(move || pump_stdin(rx, writer));
                stdin_tx = Some(tx);
            }
        } else {
            if let Some(o) = proc.child.stdout.take() {
                let tx = out_tx.clone();
                readers.push(std::thread::spawn(move || {
                    pump_reader(o, Stream::Stdout, tx)
                }));
            }
            if let Some(e) = proc.child.stderr.take() {
                let tx = out_tx.clone();
                readers.push(std::thread::spawn(move || {
                    pump_reader(e, Stream::Stderr, tx)
                }));
            }
            match proc.child.stdin.take() {
                Some(i) if config.stdin && !detach => {
                    let (tx, rx) = mpsc::channel::<Bytes>(64);
                    std::thread::spawn(move || pump_stdin(rx, i));
                    stdin_tx = Some(tx);
                }
                _ => {}
            }
        }
        // When the output is drained and the process has ended, record the exit code, and only
        // then close the output: whoever sees the end of the stream can ask for the code.
        let execs = Arc::clone(self.execs_arc());
        let exec_key = exec_id.clone();
        std::thread::spawn(move || {
            for r in readers {
                let _ = r.join();
            }
            let code = proc.wait().unwrap_or(-1);
            if let Some(x) = execs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&exec_key)
            {
                x.running = false;
                x.exit_code = Some(code);
                x.master = None;
            }
            drop(out_tx);
        });
        if detach {
            return Ok(Reply::Done);
        }
        Ok(Reply::Io(IoSession {
            stdin: stdin_tx,
            output: out_rx,
            tty,
        }))
    }

    pub(crate) async fn exec_resize(
        &self,
        exec_id: String,
        height: u16,
        width: u16,
    ) -> Result<Reply, ApiError> {
        let master = {
            let execs = self.execs().lock().unwrap_or_else(|p| p.into_inner());
            let e = execs
                .get(&exec_id)
                .ok_or_else(|| ApiError::NoSuchExec(exec_id.clone()))?;
            e.master.clone()
        };
        let m = master
            .ok_or_else(|| ApiError::Conflict(format!("exec {exec_id} has no running terminal")))?;
        use std::os::fd::AsFd;
        runtime::sys::set_winsize(
            m.as_fd(),
            runtime::WinSize {
                rows: height,
                cols: width,
            },
        )
        .map_err(|e| ApiError::engine("resizing the exec terminal", e))?;
        Ok(Reply::Done)
    }

    pub(crate) async fn exec_inspect(&self, exec_id: String) -> Result<Reply, ApiError> {
        let execs = self.execs().lock().unwrap_or_else(|p| p.into_inner());
        let e = execs
            .get(&exec_id)
            .ok_or_else(|| ApiError::NoSuchExec(exec_id.clone()))?;
        Ok(Reply::Exec(ExecInfo {
            id: exec_id.clone(),
            container: e.container.clone(),
            running: e.running,
            exit_code: e.exit_code,
            pid: e.pid,
            tty: e.config.tty,
            cmd: e.config.cmd.clone(),
        }))
    }
}

/// Copy a reader's bytes into output chunks until EOF (or EIO: a PTY whose process is gone).
fn pump_reader(mut r: impl Read, stream: Stream, tx: mpsc::Sender<OutputChunk>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .blocking_send(OutputChunk {
                        stream,
                        data: Bytes::copy_from_slice(&buf[..n]),
                    })
                    .is_err()
                {
                    break;
                }
            }
        }
    }
}

/// Write what arrives for stdin; dropping the sender closes it.
fn pump_stdin(mut rx: mpsc::Receiver<Bytes>, mut w: impl Write + AsShutdown) {
    while let Some(b) = rx.blocking_recv() {
        if w.write_all(&b).is_err() {
            return;
        }
    }
    w.shutdown_write();
}

/// Closing our side of stdin: a socket half-closes, a pipe closes on drop.
trait AsShutdown {
    fn shutdown_write(&mut self);
}

impl AsShutdown for std::os::unix::net::UnixStream {
    fn shutdown_write(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl AsShutdown for std::fs::File {
    fn shutdown_write(&mut self) {
        // A PTY master: send EOF (^D) at the start of a line.
        let _ = self.write_all(&[4]);
    }
}

impl AsShutdown for std::process::ChildStdin {
    fn shutdown_write(&mut self) {}
}

/// The monitor's attach stream: raw bytes with a TTY, 8-byte-header frames without.
/// How far apart the two readings of [`Dispatcher::container_stats_all`] are: long enough for
/// the host's CPU time (counted in clock ticks) to give a steady percentage.
pub(crate) const STATS_ALL_GAP: std::time::Duration = std::time::Duration::from_millis(500);

/// Docker's CPU %: the container's share of the host's CPU time since `prev` (container and
/// host nanoseconds), times the number of CPUs; 0 without an earlier reading.
pub(crate) fn cpu_percent(
    cpu: u64,
    system: u64,
    online_cpus: u32,
    prev: Option<(u64, u64)>,
) -> f64 {
    match prev {
        Some((pc, ps)) if system > ps && cpu >= pc => {
            (cpu - pc) as f64 / (system - ps) as f64 * f64::from(online_cpus.max(1)) * 100.0
        }
        _ => 0.0,
    }
}

/// A runtime reading as the API reports it (memory without the page cache, as Docker does).
fn sample_of(id: &ContainerId, s: &runtime::Stats, prev: Option<(u64, u64)>) -> StatsSample {
    let cpu = s.cgroup.cpu_usage_ns;
    StatsSample {
        id: id.clone(),
        time: nanos_of(&s.read),
        cpu_total_ns: cpu,
        cpu_percent: cpu_percent(cpu, s.system_cpu_ns, s.online_cpus, prev),
        memory_bytes: s
            .cgroup
            .memory_usage
            .saturating_sub(s.cgroup.memory_inactive_file),
        memory_limit: s.cgroup.memory_limit,
        pids: s.cgroup.pids_current,
        block_read: s.cgroup.blkio_read_bytes,
        block_write: s.cgroup.blkio_write_bytes,
        net_rx: s.networks.values().map(|n| n.rx_bytes).sum(),
        net_tx: s.networks.values().map(|n| n.tx_bytes).sum(),
    }
}

fn pump_attach(mut r: std::os::unix::net::UnixStream, tty: bool, tx: mpsc::Sender<OutputChunk>) {
    if tty {
        return pump_reader(r, Stream::Stdout, tx);
    }
    let mut header = [0u8; 8];
    loop {
        if r.read_exact(&mut header).is_err() {
            return;
        }
        let (stream, len) = crate::api::reply::frame_header(&header);
        let mut data = vec![0u8; len];
        if r.read_exact(&mut data).is_err() {
            return;
        }
        if tx
            .blocking_send(OutputChunk {
                stream,
                data: Bytes::from(data),
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_is_the_share_of_host_time_times_cpus() {
        // 0.5 s of container CPU in 2 s of host time (all CPUs) on 2 CPUs: 50 %
        let p = cpu_percent(
            1_500_000_000,
            12_000_000_000,
            2,
            Some((1_000_000_000, 10_000_000_000)),
        );
        assert!((p - 50.0).abs() < 1e-9, "{p}");
        assert_eq!(cpu_percent(5, 10, 2, None), 0.0, "one reading says nothing");
        assert_eq!(
            cpu_percent(5, 10, 2, Some((6, 9))),
            0.0,
            "a counter that went back"
        );
        assert_eq!(
            cpu_percent(5, 10, 2, Some((4, 10))),
            0.0,
            "no host time passed"
        );
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(signal_number("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(signal_number("sighup").unwrap(), libc::SIGHUP);
        assert_eq!(signal_number("15").unwrap(), 15);
        assert!(signal_number("FLY").is_err());
        assert!(signal_number("99").is_err());
    }

    #[test]
    fn docker_entrypoint_and_cmd_rules() {
        let img = crate::image::RunConfig {
            entrypoint: Some(vec!["/bin/busybox".into()]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let mut c = ContainerConfig::default();
        assert_eq!(process_args(&c, &img), ["/bin/busybox", "sh"]);
        c.cmd = vec!["echo".into(), "hi".into()];
        assert_eq!(process_args(&c, &img), ["/bin/busybox", "echo", "hi"]);
        c.cmd.clear();
        c.entrypoint = Some(vec!["/bin/true".into()]);
        assert_eq!(
            process_args(&c, &img),
            ["/bin/true"],
            "--entrypoint clears the image's CMD"
        );
        c.entrypoint = Some(vec![]);
        c.cmd = vec!["ls".into()];
        assert_eq!(process_args(&c, &img), ["ls"]);
    }

    #[test]
    fn env_merges_by_key() {
        let e = merge_env(
            &["PATH=/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
        );
        assert_eq!(e, ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn volume_specs() {
        let mut c = ContainerConfig {
            volumes: vec!["/srv/data:/data:ro".into(), "/tmp:/t".into()],
            ..Default::default()
        };
        let b = binds_of(&c).unwrap();
        assert!(b[0].readonly && !b[1].readonly);
        c.volumes = vec!["data:/data:ro".into()];
        let b = binds_of(&c).unwrap();
        assert_eq!(
            b[0].source,
            PathBuf::from("data"),
            "a volume name, resolved at create"
        );
        assert!(b[0].readonly);
        c.volumes = vec!["../x:/data".into()];
        assert!(matches!(binds_of(&c), Err(ApiError::InvalidArgument(_))));
        c.volumes = vec!["/a:rel".into()];
        assert!(matches!(binds_of(&c), Err(ApiError::InvalidArgument(_))));
        assert!(valid_name("web-1.a_b") && !valid_name("-x") && !valid_name("a/b"));
    }
}

/// What crashes left of containers, for `system check`: container directories without a
/// state or still "creating" with no monitor (a create cut short), snapshots without their
/// container (a create or a remove cut short), network attachments without their container.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct ContainerDebris {
    pub half_containers: Vec<String>,
    /// RUN containers of a build whose builder is gone.
    pub orphan_build_containers: Vec<String>,
    pub orphan_snapshots: Vec<PathBuf>,
    pub orphan_networks: Vec<String>,
}

impl Dispatcher {
    /// Finds (and with `repair` removes) what killed creates and removes left. Under the root's
    /// change lock no create is in progress, so what looks half-made is.
    pub(crate) fn container_debris(
        &self,
        repair: bool,
        lock: &RootLock,
    ) -> Result<ContainerDebris, ApiError> {
        let mut d = ContainerDebris::default();
        let rt = self.runtime();
        let containers = rt.root().join("containers");
        let read = |p: &std::path::Path| -> Result<Vec<String>, ApiError> {
            match std::fs::read_dir(p) {
                Ok(it) => Ok(it
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(ApiError::engine(format!("checking {}", p.display()), e)),
            }
        };
        for name in read(&containers)? {
            let Ok(id) = runtime::ContainerId::new(name.clone()) else {
                continue;
            };
            let half = match rt.state(&id) {
                Err(RuntimeError::NotFound { .. }) => true,
                Ok(st) => rt.creation_abandoned(&st),
                Err(_) => false,
            };
            if !half {
                let record = rt.record(&id).unwrap_or_default();
                let builder = record["builder_pid"].as_i64().unwrap_or(0) as i32;
                let builder_gone = builder != std::process::id() as i32
                    && (builder <= 0 || !runtime::state::alive(builder, 0));
                if record.get("build").is_some() && builder_gone {
                    d.orphan_build_containers.push(name.clone());
                    if repair {
                        match rt.remove(&id, true) {
                            Ok(()) | Err(RuntimeError::NotFound { .. }) => {}
                            Err(e) => {
                                return Err(runtime_error("removing a build container", e));
                            }
                        }
                    }
                }
                continue;
            }
            d.half_containers.push(name.clone());
            if repair {
                match rt.remove(&id, true) {
                    Ok(()) | Err(RuntimeError::NotFound { .. }) => {}
                    Err(e) => return Err(runtime_error("removing a half-created container", e)),
                }
                let dir = containers.join(&name);
                if let Err(e) = std::fs::remove_dir_all(&dir)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(ApiError::engine(format!("removing {}", dir.display()), e));
                }
            }
        }
        let exists =
            |name: &str| runtime::ContainerId::new(name).is_ok_and(|id| rt.state(&id).is_ok());
        let snapshots = self.root().path().join("snapshots");
        for name in read(&snapshots)? {
            let orphan = if name.starts_with('.') {
                crate::image::store::is_stale_temp(&name, ".trash-")
            } else {
                !exists(&name)
            };
            if orphan {
                d.orphan_snapshots.push(snapshots.join(&name));
            }
        }
        for name in read(&self.root().path().join("net/containers"))? {
            if !exists(&name) {
                d.orphan_networks.push(name);
            }
        }
        if repair {
            for p in &d.orphan_snapshots {
                if let Err(e) = std::fs::remove_dir_all(p)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(ApiError::engine(format!("removing {}", p.display()), e));
                }
            }
            self.sweep_networks(lock)?;
        }
        d.half_containers.sort();
        d.orphan_snapshots.sort();
        d.orphan_networks.sort();
        Ok(d)
    }
}
