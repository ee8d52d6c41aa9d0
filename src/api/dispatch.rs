//! The dispatcher: policy first, then one handler per command.

use super::command::Command;
use super::error::ApiError;
use super::event::Event;
use super::events::EventBus;
use super::reply::{Reply, SystemInfo, VersionInfo};
use super::root::StateRoot;
use super::types::*;
use crate::image::ImageStore;
use crate::security::{AuditLog, AuditRecord, Facts, HostBind, Policy, Request, Subject, Verdict};

/// Who is asking, and whether they already said yes to a `confirm` rule.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: Subject,
    pub confirmed: bool,
}

impl Caller {
    /// This process's own identity, unconfirmed.
    pub fn current() -> Self {
        Self {
            subject: Subject::current(),
            confirmed: false,
        }
    }
}

/// Validates each command, asks the policy, then calls the runtime or the image manager.
pub struct Dispatcher {
    root: StateRoot,
    policy: Policy,
    audit: AuditLog,
    bus: EventBus,
    images: std::sync::Arc<ImageStore>,
    runtime: crate::runtime::Runtime,
    execs: std::sync::Arc<crate::api::handlers::container::Execs>,
    watching: std::sync::OnceLock<()>,
    /// Background deletions (removed containers' snapshots), finished before the engine goes.
    pending: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// This process's tasks take the root's change lock one at a time (see [`Self::lock`]).
    lock_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Dispatcher {
    /// A one-shot CLI command ends right after `rm`: its snapshot deletion must not be cut off
    /// half-way (up to a minute; what is left then is trash `system check --repair` removes).
    fn drop(&mut self) {
        let pending = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for h in pending {
            while !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

/// What a repairing check removed, one line each (`half container ID`, `stale temp PATH`…).
fn debris_removed(report: &serde_json::Value) -> Vec<String> {
    const KINDS: &[(&str, &str)] = &[
        ("half_containers", "half container"),
        ("orphan_build_containers", "orphan build container"),
        ("orphan_snapshots", "orphan snapshot"),
        ("orphan_networks", "orphan network attachment"),
        ("stale_temp", "stale temp"),
        ("half_layers", "half layer"),
        ("corrupt_blobs", "corrupt blob"),
    ];
    let mut out = Vec::new();
    for (key, what) in KINDS {
        for v in report[key].as_array().into_iter().flatten() {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            out.push(format!("{what} {v}"));
        }
    }
    out
}

/// Runs `f`, which blocks, without holding up the other async tasks of this thread: on a
/// multi-threaded runtime they move to another worker meanwhile (a current-thread runtime,
/// as in unit tests, has nowhere to move them: `f` just runs).
pub(crate) fn blocking_here<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The state root's change lock as a task of this process holds it: the `flock` (released
/// first) and this process's turn.
pub(crate) struct ChangeLock {
    root: crate::api::root::RootLock,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for ChangeLock {
    type Target = crate::api::root::RootLock;
    fn deref(&self) -> &Self::Target {
        &self.root
    }
}

impl Dispatcher {
    pub fn new(
        root: StateRoot,
        policy: Policy,
        bus: EventBus,
        images: ImageStore,
        runtime: crate::runtime::Runtime,
    ) -> Self {
        let audit = AuditLog::new(root.audit_path());
        Self {
            root,
            policy,
            audit,
            bus,
            images: std::sync::Arc::new(images),
            runtime,
            execs: Default::default(),
            watching: std::sync::OnceLock::new(),
            pending: Default::default(),
            lock_turn: Default::default(),
        }
    }

    /// Run `f` on a thread of its own, waited for (bounded) when the dispatcher is dropped.
    pub(crate) fn in_background(&self, f: impl FnOnce() + Send + 'static) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|h| !h.is_finished());
        pending.push(std::thread::spawn(f));
    }

    pub(crate) fn runtime(&self) -> &crate::runtime::Runtime {
        &self.runtime
    }

    pub(crate) fn execs(&self) -> &crate::api::handlers::container::Execs {
        &self.execs
    }

    pub(crate) fn execs_arc(&self) -> &std::sync::Arc<crate::api::handlers::container::Execs> {
        &self.execs
    }

    /// Start turning the runtime's state changes into events (once per process).
    pub(crate) fn watch_runtime(&self) {
        self.watching
            .get_or_init(|| crate::api::watch::spawn(self.runtime.clone(), self.bus.clone()));
    }

    pub(crate) fn images(&self) -> &ImageStore {
        &self.images
    }

    /// Run blocking image-manager work (unpacking, archives) off the async threads.
    pub(crate) async fn images_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ImageStore) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = std::sync::Arc::clone(&self.images);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiError::engine("image task", e))
    }

    /// Take the state root's change lock. Handlers hold it across `.await`s (a container's
    /// creation runs on the blocking pool), so waiting for it must never block an async worker:
    /// with every worker stuck in `flock` behind a holder that needs a worker to go on, the
    /// engine hung (50 concurrent creates on `berth serve`, tests/load). Tasks of this process
    /// wait their turn on an async mutex; the `flock` (other processes hold it too) is taken on
    /// the blocking pool.
    pub(crate) async fn lock(&self) -> Result<ChangeLock, ApiError> {
        let turn = std::sync::Arc::clone(&self.lock_turn).lock_owned().await;
        let root = self.root.clone();
        let flock = tokio::task::spawn_blocking(move || root.lock())
            .await
            .map_err(|e| ApiError::engine("locking the state root", e))?
            .map_err(|e| ApiError::engine("locking the state root", e))?;
        Ok(ChangeLock {
            root: flock,
            _turn: turn,
        })
    }

    /// How many containers use each image id.
    pub(crate) fn image_use_counts(
        &self,
    ) -> Result<std::collections::HashMap<String, usize>, ApiError> {
        Ok(self.container_image_counts())
    }

    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Carry out one command for `caller`. The policy is consulted before any handler runs; a
    /// denial (or an unconfirmed `confirm`) is an error, an event and an audit record.
    pub async fn dispatch(&self, caller: &Caller, cmd: Command) -> Result<Reply, ApiError> {
        self.authorize(caller, &cmd)?;
        match cmd {
            Command::ContainerList { all } => self.container_list(all).await,
            Command::ContainerCreate { config, pull } => self.container_create(*config, pull).await,
            Command::ContainerStart { id } => self.container_start(id).await,
            Command::ContainerStop { id, timeout } => self.container_stop(id, timeout).await,
            Command::ContainerKill { id, signal } => self.container_kill(id, signal).await,
            Command::ContainerRestart { id, timeout } => self.container_restart(id, timeout).await,
            Command::ContainerPause { id } => self.container_pause(id, true).await,
            Command::ContainerUnpause { id } => self.container_pause(id, false).await,
            Command::ContainerRemove { id, force } => self.container_remove(id, force).await,
            Command::ContainerRename { id, name } => self.container_rename(id, name).await,
            Command::ContainerWait { id, condition } => self.container_wait(id, condition).await,
            Command::ContainerAttach { id, stdin } => self.container_attach(id, stdin).await,
            Command::ContainerResize { id, height, width } => {
                self.container_resize(id, height, width).await
            }
            Command::ExecCreate { config } => self.exec_create(*config).await,
            Command::ExecStart {
                exec_id,
                detach,
                console_size,
            } => self.exec_start(exec_id, detach, console_size).await,
            Command::ExecResize {
                exec_id,
                height,
                width,
            } => self.exec_resize(exec_id, height, width).await,
            Command::ExecInspect { exec_id } => self.exec_inspect(exec_id).await,
            Command::ContainerLogs { id, options } => self.container_logs(id, options).await,
            Command::ContainerStats { id, stream } => self.container_stats(id, stream).await,
            Command::ContainerStatsAll => self.container_stats_all().await,
            Command::ContainerTop { id } => self.container_top(id).await,
            Command::ContainerInspect { id } => self.container_inspect(id).await,
            Command::ContainerPrune => self.container_prune().await,
            Command::ImageList => self.image_list().await,
            Command::ImagePull {
                reference,
                platform,
            } => self.image_pull(reference, platform).await,
            Command::ImagePush { reference } => self.image_push(reference).await,
            Command::ImageBuild { config } => self.image_build(caller, *config).await,
            Command::ImageTag { source, target } => self.image_tag(source, target).await,
            Command::ImageRemove { reference, force } => self.image_remove(reference, force).await,
            Command::ImagePrune { all } => self.image_prune(all).await,
            Command::ImageInspect { reference } => self.image_inspect(reference).await,
            Command::ImageHistory { reference } => self.image_history(reference).await,
            Command::ImageSave { references, path } => self.image_save(references, path).await,
            Command::ImageLoad { path } => self.image_load(path).await,
            Command::ImageImport { path, reference } => self.image_import(path, reference).await,
            Command::RegistryLogin {
                registry,
                username,
                password,
            } => self.registry_login(registry, username, password).await,
            Command::NetworkList => self.network_list().await,
            Command::NetworkCreate {
                name,
                subnet,
                labels,
            } => self.network_create(name, subnet, labels).await,
            Command::NetworkInspect { name } => self.network_inspect(name).await,
            Command::NetworkRemove { name } => self.network_remove(name).await,
            Command::NetworkConnect { network, container } => {
                self.network_connect(network, container, true).await
            }
            Command::NetworkDisconnect { network, container } => {
                self.network_connect(network, container, false).await
            }
            Command::VolumeList => self.volume_list().await,
            Command::VolumeCreate { name, labels } => self.volume_create(name, labels).await,
            Command::VolumeInspect { name } => self.volume_inspect(name).await,
            Command::VolumeRemove { name } => self.volume_remove(name).await,
            Command::VolumePrune => self.volume_prune().await,
            Command::AuditLog { limit } => self
                .audit
                .tail(limit)
                .map(Reply::Audit)
                .map_err(|e| ApiError::engine("reading the audit log", e)),
            Command::SystemCheck { repair } => {
                self.system_check(repair, true).await.map(Reply::Json)
            }
            Command::SystemVersion => Ok(Reply::Version(version_info())),
            Command::SystemInfo => self.system_info().await,
        }
    }

    /// `system check`: the containers' crash debris and the image store (every blob hashed
    /// unless `hash_blobs` is false); with `repair`, what is bad or left over is removed. Under
    /// the root's change lock: no create or remove of any berth process is half-way meanwhile.
    async fn system_check(
        &self,
        repair: bool,
        hash_blobs: bool,
    ) -> Result<serde_json::Value, ApiError> {
        let lock = self.lock().await?;
        // Containers first: a repair removes a dead builder's RUN container before the
        // image check removes its scratch directory.
        let debris = self.container_debris(repair, &lock);
        let report = self
            .images_blocking(move |s| {
                if hash_blobs {
                    s.check(repair)
                } else {
                    s.check_debris(repair)
                }
            })
            .await?;
        drop(lock);
        let report = report.map_err(|e| ApiError::engine("checking the store", e))?;
        let mut v =
            serde_json::to_value(&report).map_err(|e| ApiError::engine("checking the store", e))?;
        let debris = serde_json::to_value(debris?)
            .map_err(|e| ApiError::engine("checking the containers", e))?;
        if let (Some(v), serde_json::Value::Object(d)) = (v.as_object_mut(), debris) {
            v.extend(d);
        }
        Ok(v)
    }

    /// The clean-up at the start of a long-running engine (`berth serve`, the console): the
    /// repair of `system check --repair`, blobs not hashed, removes what crashed berth
    /// processes left (half-made containers, orphan snapshots and network attachments, temp
    /// files of processes that are gone, cut-short unpacks). What a live container or another
    /// live process's operation uses is never debris (see [`Self::system_check`]). What was
    /// removed is published as an event, a failure as an error event; both are returned.
    pub(crate) async fn repair_crash_debris(&self) -> Result<Vec<String>, ApiError> {
        match self.system_check(true, false).await {
            Ok(report) => {
                let removed = debris_removed(&report);
                if !removed.is_empty() {
                    self.bus.publish(Event::DebrisRemoved {
                        removed: removed.clone(),
                    });
                }
                Ok(removed)
            }
            Err(e) => {
                self.bus.publish(Event::Error {
                    context: "removing crash debris at start".into(),
                    message: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// Asks the policy about `cmd` for `caller` (handlers also use it for the work a command does
    /// on the caller's behalf, like a build's RUN containers).
    pub(crate) fn authorize(&self, caller: &Caller, cmd: &Command) -> Result<(), ApiError> {
        self.check(caller, &request_of(cmd), is_query(cmd))?;
        // `run`/`create --pull`: an image that is missing will be pulled, and a pull is a pull
        // whoever asks for it, so `image.pull` rules apply to it too.
        if let Command::ContainerCreate { config, pull: true } = cmd
            && matches!(
                self.images.inspect(config.image.as_str()),
                Err(crate::image::ImageError::NotFound { .. })
            )
        {
            self.check(caller, &implicit_pull_of(config), false)?;
        }
        Ok(())
    }

    /// Ask the policy about one request; record it; an error unless it may proceed.
    fn check(&self, caller: &Caller, request: &Request, query: bool) -> Result<(), ApiError> {
        let decision = self.policy.decide(&caller.subject, request);
        let proceeds = match decision.verdict {
            Verdict::Allow => true,
            Verdict::Confirm => caller.confirmed,
            Verdict::Deny => false,
        };
        // Queries that are allowed are not worth an audit line each (a console lists often);
        // every refusal, confirmation and change is.
        if !proceeds || decision.verdict != Verdict::Allow || !query {
            self.record(caller, request, &decision);
        }
        if proceeds {
            return Ok(());
        }
        Err(match decision.verdict {
            Verdict::Confirm => ApiError::ConfirmationRequired {
                rule: decision.rule,
                reason: decision.reason,
            },
            _ => ApiError::Denied {
                rule: decision.rule,
                reason: decision.reason,
            },
        })
    }

    fn record(&self, caller: &Caller, request: &Request, decision: &crate::security::Decision) {
        let subject = caller.subject.to_string();
        let record = AuditRecord {
            time: rfc3339_now(),
            subject: subject.clone(),
            uid: caller.subject.uid,
            action: request.action.clone(),
            target: request.target.clone(),
            decision: decision.verdict,
            rule: decision.rule.clone(),
            reason: decision.reason.clone(),
        };
        if let Err(e) = self.audit.append(&record) {
            self.bus.publish(Event::Error {
                context: format!("writing the audit log {}", self.audit.path().display()),
                message: e.to_string(),
            });
        }
        self.bus.publish(Event::PolicyDecision {
            subject,
            action: request.action.clone(),
            target: request.target.clone(),
            verdict: decision.verdict,
            rule: decision.rule.clone(),
            reason: decision.reason.clone(),
        });
    }

    async fn system_info(&self) -> Result<Reply, ApiError> {
        let states = self.runtime.list().unwrap_or_default();
        let running = states
            .iter()
            .filter(|s| {
                matches!(
                    s.status,
                    crate::runtime::Status::Running | crate::runtime::Status::Paused
                )
            })
            .count();
        Ok(Reply::Info(SystemInfo {
            root: self.root.path().display().to_string(),
            containers: states.len(),
            containers_running: running,
            images: self.images.list(&|_| 0).map(|l| l.len()).unwrap_or(0),
            cgroup_version: cgroup_version().into(),
            policy: self.policy.origin().to_owned(),
        }))
    }
}

/// Read-only commands.
fn is_query(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::ContainerList { .. }
            | Command::ContainerInspect { .. }
            | Command::ContainerLogs { .. }
            | Command::ContainerStats { .. }
            | Command::ContainerStatsAll
            | Command::ContainerTop { .. }
            | Command::ContainerWait { .. }
            | Command::ExecInspect { .. }
            | Command::ImageList
            | Command::ImageInspect { .. }
            | Command::ImageHistory { .. }
            | Command::AuditLog { .. }
            | Command::NetworkList
            | Command::NetworkInspect { .. }
            | Command::VolumeList
            | Command::VolumeInspect { .. }
            | Command::SystemVersion
            | Command::SystemInfo
    )
}

/// The policy request a command makes: what the dispatcher asks the policy before running it
/// (and what `berth policy explain` shows).
pub fn request_of(cmd: &Command) -> Request {
    Request {
        action: cmd.action().to_owned(),
        target: cmd.target(),
        facts: facts_of(cmd),
    }
}

/// The `image.pull` request of a create that will pull its missing image.
pub fn implicit_pull_of(config: &ContainerConfig) -> Request {
    request_of(&Command::ImagePull {
        reference: config.image.clone(),
        platform: config.platform.clone(),
    })
}

/// What the policy may look at in a command.
fn facts_of(cmd: &Command) -> Facts {
    match cmd {
        Command::ContainerCreate { config, .. } => {
            let c = config.as_ref();
            let binds = c
                .volumes
                .iter()
                .filter_map(|v| {
                    let mut parts = v.split(':');
                    let src = parts.next()?;
                    // Only host paths are binds; a bare name is a named volume.
                    src.starts_with('/').then(|| HostBind {
                        path: src.into(),
                        read_only: parts.skip(1).any(|o| o.split(',').any(|o| o == "ro")),
                    })
                })
                .collect();
            Facts {
                image: Some(c.image.0.clone()),
                privileged: c.privileged,
                cap_add: c.cap_add.clone(),
                binds,
                user: c.user.clone(),
                memory: c.memory,
                cpus: c.cpus,
                pids_limit: c.pids_limit,
                network_host: c.network == NetworkMode::Host,
                pid_host: c.pid_host,
                ipc_host: c.ipc_host,
                seccomp_unconfined: c
                    .security_opt
                    .iter()
                    .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined"),
                host_ports: c.publish.iter().filter_map(|p| host_port(p)).collect(),
            }
        }
        Command::ImagePull { reference, .. } | Command::ImagePush { reference } => Facts {
            image: Some(reference.0.clone()),
            ..Facts::default()
        },
        Command::ImageImport {
            reference: Some(target),
            ..
        }
        | Command::ImageTag { target, .. } => Facts {
            image: Some(target.0.clone()),
            ..Facts::default()
        },
        Command::ExecCreate { config } => Facts {
            privileged: config.privileged,
            user: config.user.clone(),
            ..Facts::default()
        },
        _ => Facts::default(),
    }
}

/// The host port of a `-p` spec (`[ip:]host:container[/proto]`), if it names one.
fn host_port(spec: &str) -> Option<u16> {
    let spec = spec.split('/').next()?;
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    match parts.len() {
        2 | 3 => parts[1].parse().ok(),
        _ => None,
    }
}

fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        Ok(_) => "1",
        Err(_) => "none",
    }
}

pub(crate) fn version_info() -> VersionInfo {
    let uts = nix::sys::utsname::uname().ok();
    VersionInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        api_version: "1.44".into(),
        min_api_version: "1.24".into(),
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        kernel: uts
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// Now, as RFC 3339 UTC with seconds.
pub(crate) fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocking work in `blocking_here` on every async worker at once: the other tasks still
    /// run. Here the blocked ones wait for a task spawned after them; run on the workers
    /// themselves, they waited forever.
    #[test]
    fn blocking_here_leaves_the_workers_to_the_other_tasks() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (txs, blocked): (Vec<_>, Vec<_>) = (0..2)
                    .map(|_| {
                        let (tx, rx) = std::sync::mpsc::channel::<()>();
                        (tx, tokio::spawn(async move { blocking_here(|| rx.recv()) }))
                    })
                    .unzip();
                // Let both occupy a worker before the releasing task exists.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                tokio::spawn(async move {
                    for tx in txs {
                        tx.send(()).unwrap();
                    }
                })
                .await
                .unwrap();
                for b in blocked {
                    b.await.unwrap().unwrap();
                }
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a task could run while both workers were in blocking work");
    }

    #[test]
    fn debris_removed_names_each_item_with_its_kind() {
        let report = serde_json::json!({
            "half_containers": ["abc"],
            "orphan_snapshots": ["/r/snapshots/def"],
            "stale_temp": ["/r/layers/.tmp-1-2"],
            "orphan_networks": [],
            "unreferenced_layers": ["kept"],
        });
        assert_eq!(
            debris_removed(&report),
            [
                "half container abc",
                "orphan snapshot /r/snapshots/def",
                "stale temp /r/layers/.tmp-1-2"
            ]
        );
    }

    #[test]
    fn host_ports_of_publish_specs() {
        assert_eq!(host_port("8080:80"), Some(8080));
        assert_eq!(host_port("127.0.0.1:53:53/udp"), Some(53));
        assert_eq!(host_port("80"), None);
    }
}

#[cfg(test)]
mod dispatcher_tests {
    use super::*;
    use crate::api::{Engine, EngineOptions};

    const DENY_CREATE: &str = "[[rule]]\naction = \"container.create\"\ndecision = \"deny\"\nreason = \"no new containers today\"\n\n[[rule]]\naction = \"*\"\ndecision = \"allow\"\n";

    fn engine_with(policy: &str) -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let pol = dir.path().join("policy.toml");
        std::fs::write(&pol, policy).unwrap();
        let engine = Engine::open(EngineOptions {
            root: Some(dir.path().join("root")),
            policy: Some(pol),
        })
        .unwrap();
        (dir, engine)
    }

    fn create() -> Command {
        Command::ContainerCreate {
            config: Box::new(ContainerConfig {
                image: "busybox".into(),
                name: Some("web".into()),
                ..Default::default()
            }),
            pull: true,
        }
    }

    #[tokio::test]
    async fn denied_command_never_reaches_its_handler_and_is_audited() {
        let (_dir, engine) = engine_with(DENY_CREATE);
        let mut events = engine.subscribe().unwrap();
        let err = engine.submit(create()).await.unwrap_err();
        match &err {
            ApiError::Denied { rule, reason } => {
                assert!(
                    rule.as_deref().unwrap().ends_with("policy.toml:1"),
                    "{rule:?}"
                );
                assert_eq!(reason, "no new containers today");
            }
            other => panic!("expected a denial, got {other:?}"),
        }
        // nothing was created or pulled
        let root = engine.root().unwrap().path();
        assert_eq!(
            std::fs::read_dir(root.join("containers")).unwrap().count(),
            0
        );
        let blobs = std::fs::read_dir(root.join("images/blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(blobs, 0, "a denied create pulled blobs");
        // one audit record, and an event saying why
        let audit = AuditLog::new(root.join("audit.log")).tail(10).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (audit[0].action.as_str(), audit[0].decision),
            ("container.create", Verdict::Deny)
        );
        assert_eq!(audit[0].target.as_deref(), Some("busybox"));
        match events.recv().await.unwrap().event {
            Event::PolicyDecision {
                verdict, action, ..
            } => {
                assert_eq!(
                    (verdict, action.as_str()),
                    (Verdict::Deny, "container.create")
                )
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    /// The start-up clean-up removes a create's leftovers, says so in an event, and leaves a
    /// live process's temp files; a remote engine has none to run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repair_crash_debris_removes_leftovers_and_publishes_what_it_removed() {
        let (_dir, engine) = engine_with("[[rule]]\naction = \"*\"\ndecision = \"allow\"\n");
        let root = engine.root().unwrap().path().to_owned();
        let half = root.join("containers").join("d1".repeat(32));
        let orphan = root.join("snapshots").join("d2".repeat(32));
        let live = root
            .join("snapshots")
            .join(format!(".trash-{}-1", std::process::id()));
        for d in [&half, &orphan, &live] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
        }
        let mut events = engine.subscribe().unwrap();
        let removed = engine
            .repair_crash_debris()
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            removed,
            [
                format!("half container {}", "d1".repeat(32)),
                format!("orphan snapshot {}", orphan.display()),
            ]
        );
        assert!(!half.exists() && !orphan.exists() && live.exists());
        loop {
            match events.recv().await.unwrap().event {
                Event::DebrisRemoved { removed: r } => break assert_eq!(r, removed),
                Event::PolicyDecision { .. } => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
        // Nothing left: nothing said.
        let again = engine
            .repair_crash_debris()
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        assert!(again.is_empty(), "{again:?}");
        let remote = Engine::connect("unix:///nonexistent/berth.sock").unwrap();
        assert!(remote.repair_crash_debris().is_none());
    }

    #[tokio::test]
    async fn confirm_rule_needs_confirmation_then_proceeds() {
        let (_dir, engine) = engine_with(
            "[[rule]]\naction = \"system.info\"\ndecision = \"confirm\"\n\n[[rule]]\naction = \"*\"\ndecision = \"allow\"\n",
        );
        let err = engine.submit(Command::SystemInfo).await.unwrap_err();
        assert!(
            matches!(err, ApiError::ConfirmationRequired { .. }),
            "{err:?}"
        );
        let caller = Caller {
            confirmed: true,
            ..Caller::current()
        };
        assert!(matches!(
            engine.submit_as(&caller, Command::SystemInfo).await,
            Ok(Reply::Info(_))
        ));
    }

    #[tokio::test]
    async fn allowed_queries_are_not_audited_but_changes_and_denials_are() {
        let (_dir, engine) = engine_with("[[rule]]\naction = \"*\"\ndecision = \"allow\"\n");
        engine
            .submit(Command::ContainerList { all: true })
            .await
            .unwrap();
        let audit = AuditLog::new(engine.root().unwrap().audit_path());
        assert!(audit.tail(10).unwrap().is_empty());
        let _ = engine
            .submit(Command::ImageRemove {
                reference: "x".into(),
                force: false,
            })
            .await;
        assert_eq!(audit.tail(10).unwrap().len(), 1);
    }

    #[test]
    fn invalid_policy_stops_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let pol = dir.path().join("p.toml");
        std::fs::write(&pol, "[[rule]]\naction = \"*\"\ndecision = \"allow-all\"\n").unwrap();
        let err = Engine::open(EngineOptions {
            root: Some(dir.path().join("root")),
            policy: Some(pol),
        })
        .err()
        .expect("an invalid policy must refuse to start");
        assert!(err.to_string().contains("p.toml:3"), "{err}");
    }

    /// More tasks than async workers, each holding the change lock across an `.await` on the
    /// blocking pool (as a container's creation does): all finish. When waiting for the lock
    /// blocked the workers in `flock`, the holder was never polled again and this hung.
    #[test]
    fn tasks_holding_the_change_lock_across_awaits_never_starve_the_workers() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path().join("root")).unwrap();
        let d = std::sync::Arc::new(Dispatcher::new(
            root.clone(),
            crate::api::engine::load_policy(None).unwrap(),
            EventBus::new(root.events_path()),
            ImageStore::open(root.path()).unwrap(),
            crate::runtime::Runtime::open(root.path()).unwrap(),
        ));
        // A runtime like `berth serve`'s, watched from outside: a hung one drives no timers.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let tasks: Vec<_> = (0..16)
                    .map(|_| {
                        let (d, inside) = (d.clone(), inside.clone());
                        tokio::spawn(async move {
                            let _lock = d.lock().await.unwrap();
                            let before = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            assert_eq!(before, 0, "two holders at once");
                            tokio::task::spawn_blocking(|| {
                                std::thread::sleep(std::time::Duration::from_millis(5))
                            })
                            .await
                            .unwrap();
                            inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the lock holders finish: no async worker blocked in flock");
    }
}
