//! Image build from a Dockerfile, with a layer cache.
//!
//! The [`Builder`] walks the stages up to the target, one instruction at a time. Everything
//! that only needs the store (FROM, COPY/ADD, metadata instructions, committing) it does
//! itself; what needs the rest of the engine it hands back as a [`Step`]: a base image to
//! pull, or a RUN to execute in a container on an overlay snapshot it prepared (the
//! dispatcher's handler checks the policy, runs the container, then calls
//! [`Builder::finish_run`], which turns the overlay upper dir into the layer).
//!
//! Every step is committed (config + manifest blobs, not named) so a cache entry — keyed on
//! the parent image id, the instruction, the ARGs in scope and, for COPY/ADD, the content of
//! the sources — can point at it. Blobs are protected from GC while the build runs; a cache
//! entry whose blobs have been collected since is a miss.

pub mod context;
mod copy;
pub mod dockerfile;
pub mod layer;
pub mod user;
pub mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::ImageStore;
use super::Protect;
use super::config::ImageConfig;
use super::digest::{Digest, Hasher, ImageId};
use super::error::ImageError;
use super::layout::{
    DOCKER_LAYER_GZIP, Descriptor, Manifest, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR,
    OCI_MANIFEST, Platform,
};
use super::reference::Reference;
use context::Ignore;
use copy::{CopyFrom, add_parents};
use dockerfile::{Command, Healthcheck, Instruction, Kind};
pub use dockerfile::{Dockerfile, LineError};
use layer::{LayerBlob, LayerWriter, MergedView};
pub use user::resolve_user;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// Relative to the context unless absolute; `Dockerfile` by default.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<Reference>,
    pub build_args: Vec<(String, String)>,
    pub no_cache: bool,
    pub target: Option<String>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A problem with one instruction (parse or execution): `file:line: INSTR: message`.
    #[error(transparent)]
    Step(#[from] LineError),
    /// The request itself (no Dockerfile, an unknown target stage…).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Store(#[from] ImageError),
}

/// An image state of the build: config and manifest blobs in the store, not named.
#[derive(Debug, Clone)]
pub struct Snapshot {
    manifest: Manifest,
    manifest_digest: Digest,
    manifest_size: u64,
    config: Value,
    config_digest: Digest,
}

impl Snapshot {
    pub fn id(&self) -> &ImageId {
        &self.config_digest
    }
}

/// What the builder needs from the engine before it can go on.
#[derive(Debug)]
pub enum Step {
    /// `reference` (a FROM or COPY --from image) is not in the store: pull it, then advance.
    /// `place` is `file:line: INSTRUCTION`, for messages.
    Pull { reference: Reference, place: String },
    /// Execute a RUN, then call [`Builder::finish_run`] with its exit code.
    Run(RunRequest),
    /// The image is built (and named with the tags).
    Done { id: ImageId },
}

/// A RUN to execute in a container with the given overlay rootfs.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Top layer first.
    pub lowerdirs: Vec<PathBuf>,
    pub upperdir: PathBuf,
    pub workdir: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The USER in force (for the policy's facts).
    pub user: Option<String>,
    /// The image the stage started from (for the policy's facts).
    pub base: String,
    /// `file:line` of the instruction, for messages.
    pub place: String,
}

struct StageState {
    snap: Snapshot,
    base: String,
    args: BTreeMap<String, String>,
    shell: Vec<String>,
    cmd_set: bool,
}

struct PendingRun {
    key: Option<Digest>,
    created_by: String,
    dir: PathBuf,
    upper: PathBuf,
    text: String,
    line: usize,
}

/// A build in progress. Drive it with [`Builder::advance`] until it says `Done`.
pub struct Builder {
    df: Dockerfile,
    context: PathBuf,
    ignore: Ignore,
    build_args: BTreeMap<String, String>,
    no_cache: bool,
    tags: Vec<Reference>,
    last_stage: usize,
    done: Vec<Option<Snapshot>>,
    stage: usize,
    next: usize,
    cur: Option<StageState>,
    step: usize,
    total: usize,
    pending: Option<PendingRun>,
    guards: Vec<Protect>,
}

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Builder {
    /// Reads and parses the Dockerfile and `.dockerignore`. No engine work yet.
    pub fn new(opts: BuildOptions) -> Result<Builder, BuildError> {
        let context = opts.context.clone();
        if !context.is_dir() {
            return Err(BuildError::Input(format!(
                "the build context {} is not a directory",
                context.display()
            )));
        }
        let df_path = match &opts.dockerfile {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => context.join(p),
            None => context.join("Dockerfile"),
        };
        let text = std::fs::read_to_string(&df_path).map_err(|e| {
            BuildError::Input(format!("reading the Dockerfile {}: {e}", df_path.display()))
        })?;
        let name = opts
            .dockerfile
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "Dockerfile".into());
        let df = Dockerfile::parse(&name, &text)?;
        let ignore = Ignore::load(&context).map_err(|(line, message)| LineError {
            file: ".dockerignore".into(),
            line,
            instruction: "pattern".into(),
            message,
        })?;
        let last_stage = match &opts.target {
            Some(t) => df.stage_index(t).ok_or_else(|| {
                BuildError::Input(format!("target stage {t:?} could not be found in {name}"))
            })?,
            None => df.stages.len() - 1,
        };
        let total = df.stages[..=last_stage]
            .iter()
            .map(|s| s.instructions.len() + 1)
            .sum();
        Ok(Builder {
            done: vec![None; df.stages.len()],
            df,
            context,
            ignore,
            build_args: opts.build_args.into_iter().collect(),
            no_cache: opts.no_cache,
            tags: opts.tags,
            last_stage,
            stage: 0,
            next: 0,
            cur: None,
            step: 0,
            total,
            pending: None,
            guards: Vec::new(),
        })
    }

    fn err(&self, line: usize, instruction: &str, message: impl std::fmt::Display) -> BuildError {
        BuildError::Step(LineError {
            file: self.df.file.clone(),
            line,
            instruction: instruction.into(),
            message: message.to_string(),
        })
    }

    /// Goes on with the build until it is done or needs the engine.
    pub fn advance(
        &mut self,
        store: &ImageStore,
        out: &dyn Fn(String),
    ) -> Result<Step, BuildError> {
        if self.pending.is_some() {
            return Err(BuildError::Input("a RUN step is still pending".into()));
        }
        loop {
            if self.stage > self.last_stage {
                return self.finish(store, out);
            }
            if self.cur.is_none() {
                if let Some(step) = self.start_stage(store, out)? {
                    return Ok(step);
                }
                continue;
            }
            let stage = &self.df.stages[self.stage];
            if self.next >= stage.instructions.len() {
                let st = self.cur.take().expect("current stage");
                self.done[self.stage] = Some(st.snap);
                self.stage += 1;
                self.next = 0;
                continue;
            }
            let instr = stage.instructions[self.next].clone();
            if let Some(step) = self.instruction(store, &instr, out)? {
                return Ok(step);
            }
        }
    }

    fn finish(&mut self, store: &ImageStore, out: &dyn Fn(String)) -> Result<Step, BuildError> {
        let snap = self.done[self.last_stage]
            .clone()
            .ok_or_else(|| BuildError::Input("the target stage was not built".into()))?;
        let desc = Descriptor::new(
            OCI_MANIFEST,
            snap.manifest_digest.clone(),
            snap.manifest_size,
        );
        // Unpacked now, so the first container of the image starts at once.
        self.layer_dirs(store, &snap)?;
        if self.tags.is_empty() {
            store.set_name(None, desc.clone(), None)?;
        }
        for t in &self.tags {
            store.set_name(Some(t), desc.clone(), None)?;
        }
        out(format!(" ---> {}", snap.config_digest.short()));
        Ok(Step::Done {
            id: snap.config_digest,
        })
    }

    fn global_lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name: &str| {
            self.df
                .global_args
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(k, v)| self.build_args.get(k).cloned().or_else(|| v.clone()))
        }
    }

    fn start_stage(
        &mut self,
        store: &ImageStore,
        out: &dyn Fn(String),
    ) -> Result<Option<Step>, BuildError> {
        let stage = self.df.stages[self.stage].clone();
        let base = vars::expand(&stage.base, self.df.escape, &self.global_lookup())
            .map_err(|m| self.err(stage.line, "FROM", m))?;
        let snap = if base == "scratch" {
            let host = Platform::host();
            let mut config = json!({
                "architecture": host.architecture,
                "os": host.os,
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            });
            if let Some(v) = host.variant {
                config["variant"] = json!(v);
            }
            self.commit_config(store, None, config)?
        } else if let Some(i) = self.df.stage_index(&base).filter(|&i| i < self.stage) {
            self.done[i].clone().expect("earlier stages are built")
        } else {
            match self.image_snapshot(store, &base, stage.line, "FROM")? {
                Ok(s) => s,
                Err(reference) => {
                    let place = format!("{}:{}: FROM", self.df.file, stage.line);
                    return Ok(Some(Step::Pull { reference, place }));
                }
            }
        };
        self.step += 1;
        out(format!("Step {}/{} : FROM {base}", self.step, self.total));
        out(format!(" ---> {}", snap.config_digest.short()));
        let shell = snap.config["config"]["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect());
        self.cur = Some(StageState {
            snap,
            base,
            args: BTreeMap::new(),
            shell,
            cmd_set: false,
        });
        Ok(None)
    }

    /// An image from the store as a snapshot; `Err(reference)` when it must be pulled.
    fn image_snapshot(
        &mut self,
        store: &ImageStore,
        name: &str,
        line: usize,
        instr: &str,
    ) -> Result<Result<Snapshot, Reference>, BuildError> {
        match store.resolve(name) {
            Ok(img) => {
                let raw = store.content.read_blob(&img.id)?;
                let config: Value = serde_json::from_slice(&raw)
                    .map_err(|e| ImageError::json(format!("image config {}", img.id), e))?;
                self.guards.push(
                    store.protect(
                        img.manifest
                            .layers
                            .iter()
                            .map(|l| l.digest.clone())
                            .chain([img.id.clone(), img.desc.digest.clone()]),
                    ),
                );
                Ok(Ok(Snapshot {
                    manifest: img.manifest.clone(),
                    manifest_digest: img.desc.digest.clone(),
                    manifest_size: img.desc.size,
                    config,
                    config_digest: img.id,
                }))
            }
            Err(ImageError::NotFound { .. }) => match Reference::parse(name) {
                Ok(r) => Ok(Err(r)),
                Err(e) => Err(self.err(line, instr, e)),
            },
            Err(e) => Err(self.err(line, instr, e)),
        }
    }

    /// The unpacked layer directories of a snapshot, top first.
    fn layer_dirs(&self, store: &ImageStore, snap: &Snapshot) -> Result<Vec<PathBuf>, BuildError> {
        let config = ImageConfig::parse(
            &serde_json::to_vec(&snap.config).map_err(|e| ImageError::json("image config", e))?,
        )?;
        let img = super::ops::Image {
            id: snap.config_digest.clone(),
            desc: Descriptor::new(
                OCI_MANIFEST,
                snap.manifest_digest.clone(),
                snap.manifest_size,
            ),
            manifest: snap.manifest.clone(),
            names: Vec::new(),
            repo_digests: Vec::new(),
        };
        let mut dirs = store.ensure_layers(&img, &config)?;
        dirs.reverse();
        Ok(dirs)
    }

    /// Writes a config (and a manifest with `layers`) as a new snapshot.
    fn commit_config(
        &mut self,
        store: &ImageStore,
        parent: Option<&Snapshot>,
        config: Value,
    ) -> Result<Snapshot, BuildError> {
        let raw = serde_json::to_vec(&config).map_err(|e| ImageError::json("image config", e))?;
        let config_digest = store.content.put(&raw, None)?;
        self.guards.push(store.protect([config_digest.clone()]));
        let layers: Vec<Descriptor> = parent
            .map(|p| {
                p.manifest
                    .layers
                    .iter()
                    .map(|l| {
                        let mut l = l.clone();
                        // An OCI manifest names Docker's layer types by their OCI names.
                        if l.media_type == DOCKER_LAYER_GZIP {
                            l.media_type = OCI_LAYER_GZIP.into();
                        } else if l.media_type == "application/vnd.docker.image.rootfs.diff.tar" {
                            l.media_type = OCI_LAYER_TAR.into();
                        }
                        l.annotations.clear();
                        l
                    })
                    .collect()
            })
            .unwrap_or_default();
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Descriptor::new(OCI_CONFIG, config_digest.clone(), raw.len() as u64),
            layers,
            annotations: BTreeMap::new(),
        };
        self.commit_manifest(store, manifest, config, config_digest)
    }

    fn commit_manifest(
        &mut self,
        store: &ImageStore,
        manifest: Manifest,
        config: Value,
        config_digest: Digest,
    ) -> Result<Snapshot, BuildError> {
        let raw = serde_json::to_vec(&manifest).map_err(|e| ImageError::json("manifest", e))?;
        let manifest_digest = store.content.put(&raw, None)?;
        self.guards.push(store.protect([manifest_digest.clone()]));
        Ok(Snapshot {
            manifest,
            manifest_digest,
            manifest_size: raw.len() as u64,
            config,
            config_digest,
        })
    }

    /// A new snapshot on top of `parent`: its config changed by the step, one history entry,
    /// and the step's layer if it made one.
    fn commit_step(
        &mut self,
        store: &ImageStore,
        parent: &Snapshot,
        mut config: Value,
        layer: Option<&LayerBlob>,
        created_by: &str,
    ) -> Result<Snapshot, BuildError> {
        let t = now();
        config["created"] = json!(t);
        let mut entry = json!({"created": t, "created_by": created_by, "comment": "berth build"});
        match layer {
            Some(l) => {
                if !config["rootfs"]["diff_ids"].is_array() {
                    config["rootfs"] = json!({"type": "layers", "diff_ids": []});
                }
                config["rootfs"]["diff_ids"]
                    .as_array_mut()
                    .expect("array")
                    .push(json!(l.diff_id));
            }
            None => entry["empty_layer"] = json!(true),
        }
        match config["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => config["history"] = json!([entry]),
        }
        let mut snap = self.commit_config(store, Some(parent), config)?;
        if let Some(l) = layer {
            self.guards.push(store.protect([l.digest.clone()]));
            snap.manifest
                .layers
                .push(Descriptor::new(OCI_LAYER_GZIP, l.digest.clone(), l.size));
            let (m, c, d) = (snap.manifest, snap.config, snap.config_digest);
            snap = self.commit_manifest(store, m, c, d)?;
        }
        Ok(snap)
    }

    fn cache_dir(store: &ImageStore) -> PathBuf {
        store.root().join("build-cache")
    }

    fn cache_key(&self, parent: &Snapshot, instr: &Instruction, extra: &str) -> Digest {
        let st = self.cur.as_ref().expect("current stage");
        let mut h = Hasher::new();
        h.update(b"berth-build-cache-v1\n");
        h.update(parent.config_digest.as_str().as_bytes());
        h.update(b"\n");
        h.update(instr.text.as_bytes());
        h.update(b"\n");
        for (k, v) in &st.args {
            h.update(format!("{k}={v}\n").as_bytes());
        }
        h.update(st.shell.join("\0").as_bytes());
        h.update(b"\n");
        h.update(extra.as_bytes());
        h.finish()
    }

    fn cache_get(&mut self, store: &ImageStore, key: &Digest) -> Option<Snapshot> {
        if self.no_cache {
            return None;
        }
        let path = Self::cache_dir(store).join(key.hex());
        let md = Digest::parse(std::fs::read_to_string(path).ok()?.trim()).ok()?;
        let raw = store.content.read_blob(&md).ok()?;
        let manifest: Manifest = serde_json::from_slice(&raw).ok()?;
        if !manifest
            .layers
            .iter()
            .all(|l| store.content.has_blob(&l.digest))
        {
            return None;
        }
        let config: Value =
            serde_json::from_slice(&store.content.read_blob(&manifest.config.digest).ok()?).ok()?;
        self.guards.push(
            store.protect(
                manifest
                    .layers
                    .iter()
                    .map(|l| l.digest.clone())
                    .chain([md.clone(), manifest.config.digest.clone()]),
            ),
        );
        Some(Snapshot {
            config_digest: manifest.config.digest.clone(),
            manifest,
            manifest_digest: md,
            manifest_size: raw.len() as u64,
            config,
        })
    }

    fn cache_put(store: &ImageStore, key: &Digest, snap: &Snapshot) {
        let dir = Self::cache_dir(store);
        if std::fs::create_dir_all(&dir).is_ok() {
            // A cache that cannot be written only makes the next build slower.
            let _ = super::store::write_atomic(
                &dir.join(key.hex()),
                snap.manifest_digest.as_str().as_bytes(),
            );
        }
    }

    fn vars_of(st: &StageState) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = st.args.clone();
        if let Some(env) = st.snap.config["config"]["Env"].as_array() {
            for e in env.iter().filter_map(|e| e.as_str()) {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                m.insert(k.to_owned(), v.to_owned());
            }
        }
        m
    }

    /// Carries out one instruction (or returns the step the engine must do for it).
    fn instruction(
        &mut self,
        store: &ImageStore,
        instr: &Instruction,
        out: &dyn Fn(String),
    ) -> Result<Option<Step>, BuildError> {
        let (line, kw) = (instr.line, instr.keyword.as_str());
        let esc = self.df.escape;
        let file = self.df.file.clone();
        let st = self.cur.as_ref().expect("current stage");
        let vars = Self::vars_of(st);
        let lookup = |n: &str| vars.get(n).cloned();
        let x = |s: &str| {
            vars::expand(s, esc, &lookup).map_err(|message| {
                BuildError::Step(LineError {
                    file: file.clone(),
                    line,
                    instruction: kw.into(),
                    message,
                })
            })
        };
        let st_args = st.args.clone();
        let st_shell = st.shell.clone();
        let parent = st.snap.clone();
        let mut config = parent.config.clone();
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        let mut layer: Option<LayerBlob> = None;
        let mut extra = String::new();
        let mut new_args: Option<BTreeMap<String, String>> = None;
        let mut new_shell: Option<Vec<String>> = None;
        let mut cmd_set = st.cmd_set;
        let global: BTreeMap<String, Option<String>> = self
            .df
            .global_args
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    self.build_args.get(k).cloned().or_else(|| v.clone()),
                )
            })
            .collect();
        let announce = |this: &mut Self| {
            this.step += 1;
            out(format!(
                "Step {}/{} : {}",
                this.step, this.total, instr.text
            ));
        };
        match &instr.kind {
            Kind::Run(cmd) => {
                announce(self);
                let st = self.cur.as_ref().expect("current stage");
                let args = match cmd {
                    Command::Shell(s) => st.shell.iter().cloned().chain([s.clone()]).collect(),
                    Command::Exec(v) => v.clone(),
                };
                let key = self.cache_key(&parent, instr, "");
                if let Some(snap) = self.cache_get(store, &key) {
                    out(" ---> Using cache".into());
                    return self.advance_to(snap, out).map(|_| None);
                }
                return self
                    .prepare_run(store, instr, args, key)
                    .map(|r| Some(Step::Run(r)));
            }
            Kind::Copy {
                add,
                sources,
                dest,
                from,
                chown,
                chmod,
            } => {
                announce(self);
                let from = from.as_deref().map(x).transpose()?;
                let sources: Vec<String> =
                    sources.iter().map(|s| x(s)).collect::<Result<_, _>>()?;
                let dest = x(dest)?;
                if *add
                    && let Some(u) = sources
                        .iter()
                        .find(|s| s.contains("://") || s.starts_with("git@"))
                {
                    return Err(self.err(line, kw, format!("{u}: ADD from a URL is not supported by berth (only registries are reachable); download it into the context")));
                }
                let chown = chown.as_deref().map(x).transpose()?;
                let chmod = chmod
                    .as_deref()
                    .map(|m| {
                        u32::from_str_radix(m, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| {
                                self.err(line, kw, format!("invalid --chmod {m:?}: expected octal"))
                            })
                    })
                    .transpose()?;
                // Where the sources come from.
                let src = match &from {
                    None => CopyFrom::Context,
                    Some(f) => {
                        match self.df.stage_index(f).filter(|&i| i < self.stage) {
                            Some(i) => {
                                CopyFrom::Image(Box::new(self.done[i].clone().expect("built")))
                            }
                            None => {
                                if self.df.stage_index(f).is_some() {
                                    return Err(self.err(line, kw, format!("--from={f}: a stage can only copy from an earlier stage")));
                                }
                                match self.image_snapshot(store, f, line, kw)? {
                                    Ok(s) => CopyFrom::Image(Box::new(s)),
                                    Err(reference) => {
                                        self.step -= 1;
                                        let place = format!("{}:{line}: {kw}", self.df.file);
                                        return Ok(Some(Step::Pull { reference, place }));
                                    }
                                }
                            }
                        }
                    }
                };
                let (hash, blob) = self
                    .copy_layer(
                        store,
                        &parent,
                        &src,
                        *add,
                        &sources,
                        &dest,
                        chown.as_deref(),
                        chmod,
                    )
                    .map_err(|m| self.err(line, kw, m))?;
                extra = hash;
                let key = self.cache_key(&parent, instr, &extra);
                if let Some(snap) = self.cache_get(store, &key) {
                    out(" ---> Using cache".into());
                    return self.advance_to(snap, out).map(|_| None);
                }
                let blob = blob(self, store).map_err(|m| self.err(line, kw, m))?;
                layer = Some(blob);
            }
            Kind::Env(pairs) => {
                let mut env: Vec<String> = config["config"]["Env"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, v) in pairs {
                    let v = x(v)?;
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                config["config"]["Env"] = json!(env);
            }
            Kind::Arg(list) => {
                let mut args = st_args.clone();
                for (k, default) in list {
                    let v = match self.build_args.get(k) {
                        Some(v) => Some(v.clone()),
                        None => match default {
                            Some(d) => Some(x(d)?),
                            None => global.get(k).cloned().flatten(),
                        },
                    };
                    match v {
                        Some(v) => args.insert(k.clone(), v),
                        None => args.remove(k),
                    };
                }
                new_args = Some(args);
            }
            Kind::Workdir(w) => {
                announce(self);
                let w = x(w)?;
                let cur = config["config"]["WorkingDir"]
                    .as_str()
                    .unwrap_or("/")
                    .to_owned();
                let abs = format!(
                    "/{}",
                    context::clean(&if w.starts_with('/') {
                        w
                    } else {
                        format!("{cur}/{w}")
                    })
                );
                config["config"]["WorkingDir"] = json!(abs);
                extra = abs.clone();
                // The directory is made when missing (a layer with it and its parents).
                let key = self.cache_key(&parent, instr, &extra);
                if let Some(snap) = self.cache_get(store, &key) {
                    out(" ---> Using cache".into());
                    return self.advance_to(snap, out).map(|_| None);
                }
                let view = MergedView {
                    layers: self.layer_dirs(store, &parent)?,
                };
                if view.lookup(&abs).is_none() {
                    let mut w = LayerWriter::new(&store.content, &instr.text)?;
                    add_parents(&mut w, &view, &abs, true, &mut BTreeSet::new())?;
                    layer = Some(w.finish()?);
                }
            }
            Kind::User(u) => config["config"]["User"] = json!(x(u)?),
            Kind::Label(pairs) => {
                if !config["config"]["Labels"].is_object() {
                    config["config"]["Labels"] = json!({});
                }
                for (k, v) in pairs {
                    let (k, v) = (x(k)?, x(v)?);
                    config["config"]["Labels"][k] = json!(v);
                }
            }
            Kind::Expose(ports) => {
                if !config["config"]["ExposedPorts"].is_object() {
                    config["config"]["ExposedPorts"] = json!({});
                }
                for p in ports {
                    for p in vars::expand_words(p, esc, &lookup, true)
                        .map_err(|m| self.err(line, kw, m))?
                    {
                        let p = if p.contains('/') {
                            p.to_ascii_lowercase()
                        } else {
                            format!("{p}/tcp")
                        };
                        let port = p.split('/').next().unwrap_or("");
                        if port.split('-').any(|n| n.parse::<u16>().is_err()) {
                            return Err(self.err(line, kw, format!("invalid port {p:?}")));
                        }
                        config["config"]["ExposedPorts"][p] = json!({});
                    }
                }
            }
            Kind::Volume(vols) => {
                if !config["config"]["Volumes"].is_object() {
                    config["config"]["Volumes"] = json!({});
                }
                for v in vols {
                    let v = x(v)?;
                    if v.is_empty() {
                        return Err(self.err(
                            line,
                            kw,
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    config["config"]["Volumes"][v] = json!({});
                }
            }
            Kind::Entrypoint(c) => {
                config["config"]["Entrypoint"] = json!(argv(c, &st_shell));
                if !cmd_set {
                    config["config"]["Cmd"] = Value::Null;
                }
            }
            Kind::Cmd(c) => {
                config["config"]["Cmd"] = json!(argv(c, &st_shell));
                cmd_set = true;
            }
            Kind::StopSignal(s) => config["config"]["StopSignal"] = json!(x(s)?),
            Kind::Healthcheck(h) => {
                config["config"]["Healthcheck"] = match h {
                    Healthcheck::None => json!({"Test": ["NONE"]}),
                    Healthcheck::Check {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let test: Vec<String> = match test {
                            Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                            Command::Exec(v) => std::iter::once("CMD".to_owned())
                                .chain(v.iter().cloned())
                                .collect(),
                        };
                        let mut h = json!({"Test": test});
                        for (k, v) in [
                            ("Interval", interval),
                            ("Timeout", timeout),
                            ("StartPeriod", start_period),
                            ("StartInterval", start_interval),
                        ] {
                            if let Some(v) = v {
                                h[k] = json!(v);
                            }
                        }
                        if let Some(r) = retries {
                            h["Retries"] = json!(r);
                        }
                        h
                    }
                };
            }
            Kind::Shell(s) => {
                config["config"]["Shell"] = json!(s);
                new_shell = Some(s.clone());
            }
            Kind::Maintainer(m) => config["author"] = json!(x(m)?),
        }
        if !matches!(instr.kind, Kind::Copy { .. } | Kind::Workdir(_)) {
            announce(self);
        }
        let st = self.cur.as_mut().expect("current stage");
        if let Some(a) = new_args {
            st.args = a;
        }
        if let Some(s) = new_shell {
            st.shell = s;
        }
        st.cmd_set = cmd_set;
        if matches!(instr.kind, Kind::Arg(_)) {
            // ARG changes no image content: only what later steps see.
            self.next += 1;
            return Ok(None);
        }
        let key = self.cache_key(&parent, instr, &extra);
        if !matches!(instr.kind, Kind::Copy { .. } | Kind::Workdir(_))
            && let Some(snap) = self.cache_get(store, &key)
        {
            out(" ---> Using cache".into());
            return self.advance_to(snap, out).map(|_| None);
        }
        let created_by = created_by(instr);
        let snap = self.commit_step(store, &parent, config, layer.as_ref(), &created_by)?;
        Self::cache_put(store, &key, &snap);
        self.advance_to(snap, out).map(|_| None)
    }

    fn advance_to(&mut self, snap: Snapshot, out: &dyn Fn(String)) -> Result<(), BuildError> {
        out(format!(" ---> {}", snap.config_digest.short()));
        self.cur.as_mut().expect("current stage").snap = snap;
        self.next += 1;
        Ok(())
    }

    fn prepare_run(
        &mut self,
        store: &ImageStore,
        instr: &Instruction,
        args: Vec<String>,
        key: Digest,
    ) -> Result<RunRequest, BuildError> {
        let st = self.cur.as_ref().expect("current stage");
        let snap = st.snap.clone();
        let mut lowerdirs = self.layer_dirs(store, &snap)?;
        let view = MergedView {
            layers: lowerdirs.clone(),
        };
        let dir = store
            .root()
            .join("build-tmp")
            // The builder's pid first: `system check` knows the scratch of a builder that is gone.
            .join(format!(
                "{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(|e| ImageError::io("create", d, e))?;
        }
        if lowerdirs.is_empty() {
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty).map_err(|e| ImageError::io("create", &empty, e))?;
            lowerdirs.push(empty);
        }
        let c = &snap.config["config"];
        let mut env: Vec<String> = c["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for (k, v) in &st.args {
            if !env.iter().any(|e| e.split('=').next() == Some(k.as_str())) {
                env.push(format!("{k}={v}"));
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.into());
        }
        let user = c["User"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        let (uid, gid, additional_gids) = match &user {
            Some(u) => {
                let passwd = view.read_to_string("etc/passwd").unwrap_or_default();
                let group = view.read_to_string("etc/group").unwrap_or_default();
                match resolve_user(u, &passwd, &group) {
                    Ok(r) => r,
                    Err(m) => {
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(self.err(instr.line, &instr.keyword, m));
                    }
                }
            }
            None => (0, 0, Vec::new()),
        };
        let cwd = c["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned();
        let created_by = created_by_run(&args);
        self.pending = Some(PendingRun {
            key: Some(key),
            created_by,
            dir: dir.clone(),
            upper: upper.clone(),
            text: instr.text.clone(),
            line: instr.line,
        });
        Ok(RunRequest {
            lowerdirs,
            upperdir: upper,
            workdir: work,
            args,
            env,
            cwd,
            uid,
            gid,
            additional_gids,
            user,
            base: st.base.clone(),
            place: format!("{}:{}", self.df.file, instr.line),
        })
    }

    /// Ends the pending RUN: a non-zero `exit_code` fails the build (naming the line); else the
    /// upper dir becomes the step's layer.
    pub fn finish_run(
        &mut self,
        store: &ImageStore,
        exit_code: i32,
        out: &dyn Fn(String),
    ) -> Result<(), BuildError> {
        let p = self
            .pending
            .take()
            .ok_or_else(|| BuildError::Input("no RUN step is pending".into()))?;
        let res = (|| {
            if exit_code != 0 {
                return Err(self.err(
                    p.line,
                    "RUN",
                    format!(
                        "the command '{}' returned a non-zero code: {exit_code}",
                        p.text
                            .trim_start_matches(|c: char| !c.is_whitespace())
                            .trim()
                    ),
                ));
            }
            let mut w = LayerWriter::new(&store.content, &p.text)?;
            w.add_upper_dir(&p.upper)?;
            let blob = w.finish()?;
            let layer = (blob.entries > 0).then_some(blob);
            let parent = self.cur.as_ref().expect("current stage").snap.clone();
            let config = parent.config.clone();
            let snap = self.commit_step(store, &parent, config, layer.as_ref(), &p.created_by)?;
            if let Some(k) = &p.key {
                Self::cache_put(store, k, &snap);
            }
            self.advance_to(snap, out)
        })();
        remove_later(p.dir);
        res
    }

    /// Gives up a pending RUN (the container could not run): its snapshot dir goes.
    pub fn abort_run(&mut self) {
        if let Some(p) = self.pending.take() {
            remove_later(p.dir);
        }
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        self.abort_run();
    }
}

/// Deletes a step's snapshot dir. Synchronously: the engine may be a short-lived CLI process
/// that would exit before a background deletion is done.
fn remove_later(dir: PathBuf) {
    let _ = std::fs::remove_dir_all(dir);
}

fn argv(c: &Command, shell: &[String]) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
    }
}

fn created_by(instr: &Instruction) -> String {
    format!("{} # berth", instr.text)
}

fn created_by_run(args: &[String]) -> String {
    format!("RUN {} # berth", args.join(" "))
}
