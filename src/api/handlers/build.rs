//! `ImageBuild`: the image manager's [`Builder`] does the Dockerfile's steps; this handler
//! gives it what needs the rest of the engine: base images to pull and RUN steps to execute.
//!
//! Each RUN is a real container of the runtime on an overlay snapshot the builder prepared
//! (lowerdirs = the image so far, a fresh upper dir that becomes the step's layer), with no
//! network, the default seccomp profile and capabilities. Before it is created the policy is
//! asked about `container.create` (image = the stage's base, the USER in force), as if the
//! caller had asked for that container themselves: the permission to build is not a
//! permission to run arbitrary containers. Pulls of missing base images are asked about as
//! `image.pull` the same way. Output lines become `BuildOutput` events.

use crate::api::command::Command;
use crate::api::dispatch::{Caller, Dispatcher};
use crate::api::error::ApiError;
use crate::api::event::Event;
use crate::api::handlers::container::runtime_error;
use crate::api::reply::Reply;
use crate::api::types::{BuildConfig, ContainerConfig, Digest, ImageRef, NetworkMode};
use crate::image::Reference;
use crate::image::build::{BuildError, BuildOptions, Builder, RunRequest, Step};
use crate::runtime;

fn build_error(e: BuildError) -> ApiError {
    match e {
        BuildError::Step(l) => ApiError::InvalidArgument(l.to_string()),
        BuildError::Input(m) => ApiError::InvalidArgument(m),
        BuildError::Store(e) => crate::api::handlers::image::image_error("building the image", e),
    }
}

/// Removes a build container however its step ends.
struct Cleanup {
    rt: runtime::Runtime,
    id: runtime::ContainerId,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.rt.remove(&self.id, true);
    }
}

impl Dispatcher {
    pub(crate) async fn image_build(
        &self,
        caller: &Caller,
        config: BuildConfig,
    ) -> Result<Reply, ApiError> {
        let tags = config
            .tags
            .iter()
            .map(|t| {
                Reference::parse(t)
                    .map_err(|e| ApiError::InvalidArgument(format!("tag {t:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let opts = BuildOptions {
            context: config.context.clone(),
            dockerfile: config.dockerfile.clone(),
            tags: tags.clone(),
            build_args: config.build_args.clone(),
            no_cache: config.no_cache,
            target: config.target.clone(),
        };
        let mut builder = Some(
            tokio::task::spawn_blocking(move || Builder::new(opts))
                .await
                .map_err(|e| ApiError::engine("build task", e))?
                .map_err(build_error)?,
        );
        let bus = self.bus().clone();
        loop {
            let mut b = builder.take().expect("builder");
            let out = bus.clone();
            let (b, step) = self
                .images_blocking(move |s| {
                    let r = b.advance(s, &|line| out.publish(Event::BuildOutput { line }));
                    (b, r)
                })
                .await?;
            builder = Some(b);
            match step.map_err(build_error)? {
                Step::Pull { reference, place } => {
                    let cmd = Command::ImagePull {
                        reference: ImageRef(reference.to_string()),
                        platform: None,
                    };
                    self.authorize(caller, &cmd)?;
                    bus.publish(Event::BuildOutput {
                        line: format!("Pulling {reference}"),
                    });
                    self.image_pull(ImageRef(reference.to_string()), None)
                        .await
                        .map_err(|e| {
                            ApiError::engine(format!("{place}: pulling {reference}"), e)
                        })?;
                }
                Step::Run(req) => {
                    let code = match self.build_run(caller, req).await {
                        Ok(c) => c,
                        Err(e) => {
                            if let Some(b) = builder.as_mut() {
                                b.abort_run();
                            }
                            return Err(e);
                        }
                    };
                    let mut b = builder.take().expect("builder");
                    let out = bus.clone();
                    let (b, r) = self
                        .images_blocking(move |s| {
                            let r = b.finish_run(s, code, &|line| {
                                out.publish(Event::BuildOutput { line })
                            });
                            (b, r)
                        })
                        .await?;
                    builder = Some(b);
                    r.map_err(build_error)?;
                }
                Step::Done { id } => {
                    let id = Digest(id.to_string());
                    bus.publish(Event::ImageBuilt {
                        id: id.clone(),
                        tags: tags.iter().map(|t| t.to_string()).collect(),
                    });
                    return Ok(Reply::ImageId(id));
                }
            }
        }
    }

    /// Runs one RUN step in a container; returns its exit code. The container is removed.
    async fn build_run(&self, caller: &Caller, req: RunRequest) -> Result<i32, ApiError> {
        // The same question a user's `create` of this container would ask.
        self.authorize(
            caller,
            &Command::ContainerCreate {
                config: Box::new(ContainerConfig {
                    image: ImageRef(req.base.clone()),
                    cmd: req.args.clone(),
                    user: req.user.clone(),
                    network: NetworkMode::None,
                    ..Default::default()
                }),
                pull: false,
            },
        )?;
        let a: u128 = rand::random();
        let b: u128 = rand::random();
        let id = format!("{a:032x}{b:032x}");
        let rid =
            runtime::ContainerId::new(&id).map_err(|e| runtime_error("new container id", e))?;
        let create = runtime::CreateRequest {
            id: Some(rid.clone()),
            rootfs: Some(runtime::Rootfs::Overlay(runtime::OverlayRootfs {
                lowerdirs: req.lowerdirs.clone(),
                upperdir: req.upperdir.clone(),
                workdir: req.workdir.clone(),
            })),
            args: req.args.clone(),
            env: req.env.clone(),
            cwd: Some(req.cwd.clone()),
            uid: req.uid,
            gid: req.gid,
            additional_gids: req.additional_gids.clone(),
            hostname: Some(id[..12].to_owned()),
            network: runtime::NetworkMode::None,
            record: serde_json::json!({
                "name": format!("build-{}", &id[..12]),
                "build": req.place,
                // `system check` removes the build containers of a builder that is gone.
                "builder_pid": std::process::id(),
            }),
            ..Default::default()
        };
        let rt = self.runtime().clone();
        let bus = self.bus().clone();
        let place = format!("{}: RUN", req.place);
        let ctx = move |what: &str| format!("{place}: {what}");
        bus.publish(Event::BuildOutput {
            line: format!(" ---> Running in {}", &id[..12]),
        });
        tokio::task::spawn_blocking(move || -> Result<i32, ApiError> {
            rt.create(&create)
                .map_err(|e| runtime_error(&ctx("creating the build container"), e))?;
            let _cleanup = Cleanup {
                rt: rt.clone(),
                id: rid.clone(),
            };
            rt.start(&rid)
                .map_err(|e| runtime_error(&ctx("starting the build container"), e))?;
            let logs = rt
                .logs(
                    &rid,
                    runtime::LogOptions {
                        follow: true,
                        ..Default::default()
                    },
                )
                .map_err(|e| runtime_error(&ctx("reading the build output"), e))?;
            for entry in logs {
                let entry =
                    entry.map_err(|e| runtime_error(&ctx("reading the build output"), e))?;
                bus.publish(Event::BuildOutput {
                    line: entry.log.trim_end_matches('\n').to_owned(),
                });
            }
            let exit = rt
                .wait(&rid)
                .map_err(|e| runtime_error(&ctx("waiting for the build container"), e))?;
            Ok(exit.exit_code)
        })
        .await
        .map_err(|e| ApiError::engine("build task", e))?
    }
}
