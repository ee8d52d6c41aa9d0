//! Image commands: the image manager behind the dispatcher.

use crate::api::dispatch::Dispatcher;
use crate::api::error::ApiError;
use crate::api::event::Event;
use crate::api::reply::Reply;
use crate::api::types::{Digest, ImageDeleted, ImageRef, ImageSummary, TransferPhase};
use crate::image::{self, ImageError, Phase, ProgressUpdate, Reference};

/// An image error as the API reports it.
pub(crate) fn image_error(context: &str, e: ImageError) -> ApiError {
    match e {
        ImageError::NotFound { reference } => ApiError::NoSuchImage(reference),
        ImageError::InvalidReference { .. }
        | ImageError::InvalidPlatform { .. }
        | ImageError::InvalidDigest { .. } => ApiError::InvalidArgument(e.to_string()),
        ImageError::InUse { .. }
        | ImageError::MultipleTags { .. }
        | ImageError::Ambiguous { .. } => ApiError::Conflict(e.to_string()),
        other => ApiError::engine(context, other),
    }
}

pub(crate) fn parse_reference(r: &ImageRef) -> Result<Reference, ApiError> {
    Reference::parse(r.as_str()).map_err(|e| image_error("reading the reference", e))
}

fn phase(p: Phase) -> TransferPhase {
    match p {
        Phase::Waiting => TransferPhase::Waiting,
        Phase::Downloading => TransferPhase::Downloading,
        Phase::Verifying => TransferPhase::Verifying,
        Phase::Extracting => TransferPhase::Extracting,
        Phase::Complete => TransferPhase::Complete,
        Phase::AlreadyExists => TransferPhase::AlreadyExists,
        Phase::Uploading => TransferPhase::Pushing,
    }
}

fn created_unix(created: Option<&str>) -> Option<i64> {
    let t = time::OffsetDateTime::parse(created?, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(t.unix_timestamp())
}

fn summary(s: image::ImageSummary) -> ImageSummary {
    ImageSummary {
        id: Digest(s.id.to_string()),
        repo_tags: s.names.iter().map(|n| n.familiar()).collect(),
        repo_digests: s.repo_digests,
        // Docker's SIZE column is the unpacked size.
        size: s.size,
        created: s
            .created_unix
            .or_else(|| created_unix(s.created.as_deref())),
        containers: s.containers as u32,
    }
}

impl Dispatcher {
    /// A progress callback that turns the image manager's reports into `Transfer` events.
    fn transfer_events(
        &self,
        reference: &ImageRef,
    ) -> impl Fn(ProgressUpdate) + Send + Sync + 'static {
        let bus = self.bus().clone();
        let reference = reference.clone();
        move |u: ProgressUpdate| {
            bus.publish(Event::Transfer {
                reference: reference.clone(),
                layer: Digest(u.layer.to_string()),
                phase: phase(u.phase),
                current: u.current,
                total: Some(u.total),
            })
        }
    }

    pub(crate) async fn image_list(&self) -> Result<Reply, ApiError> {
        let in_use = self.image_use_counts()?;
        let list = self
            .images()
            .list(&|id| in_use.get(&id.to_string()).copied().unwrap_or(0))
            .map_err(|e| image_error("listing images", e))?;
        Ok(Reply::Images(list.into_iter().map(summary).collect()))
    }

    pub(crate) async fn image_pull(
        &self,
        reference: ImageRef,
        platform: Option<String>,
    ) -> Result<Reply, ApiError> {
        let parsed = parse_reference(&reference)?;
        let platform = match platform {
            Some(p) => {
                Some(image::Platform::parse(&p).map_err(|e| image_error("reading --platform", e))?)
            }
            None => None,
        };
        let id = self
            .images()
            .pull(&parsed, platform.as_ref(), self.transfer_events(&reference))
            .await
            .map_err(|e| image_error(&format!("pulling {parsed}"), e))?;
        let id = Digest(id.to_string());
        self.bus().publish(Event::ImagePulled {
            reference,
            id: id.clone(),
        });
        Ok(Reply::ImageId(id))
    }

    pub(crate) async fn image_push(&self, reference: ImageRef) -> Result<Reply, ApiError> {
        let parsed = parse_reference(&reference)?;
        let digest = self
            .images()
            .push(&parsed, self.transfer_events(&reference))
            .await
            .map_err(|e| image_error(&format!("pushing {parsed}"), e))?;
        let digest = Digest(digest.to_string());
        self.bus().publish(Event::ImagePushed {
            reference,
            digest: digest.clone(),
        });
        Ok(Reply::ImageId(digest))
    }

    pub(crate) async fn image_tag(
        &self,
        source: ImageRef,
        target: ImageRef,
    ) -> Result<Reply, ApiError> {
        let dst = parse_reference(&target)?;
        let id = {
            let _lock = self.lock().await?;
            self.images()
                .tag(source.as_str(), &dst)
                .map_err(|e| image_error("tagging", e))?
        };
        let id = Digest(id.to_string());
        self.bus().publish(Event::ImageTagged {
            id: id.clone(),
            tag: dst.familiar(),
        });
        Ok(Reply::ImageId(id))
    }

    pub(crate) async fn image_remove(
        &self,
        reference: ImageRef,
        force: bool,
    ) -> Result<Reply, ApiError> {
        let in_use = self.image_use_counts()?;
        let removed = {
            let _lock = self.lock().await?;
            self.images()
                .remove(reference.as_str(), force, &|id| {
                    in_use.contains_key(&id.to_string())
                })
                .map_err(|e| image_error(&format!("removing {reference}"), e))?
        };
        Ok(Reply::ImagesDeleted(self.report_removed(removed)))
    }

    fn report_removed(&self, removed: Vec<image::Removed>) -> Vec<ImageDeleted> {
        removed
            .into_iter()
            .map(|r| match r {
                image::Removed::Untagged(name) => {
                    let tag = name.familiar();
                    self.bus().publish(Event::ImageUntagged {
                        id: Digest(String::new()),
                        tag: tag.clone(),
                    });
                    ImageDeleted::Untagged(tag)
                }
                image::Removed::Deleted(id) => {
                    let id = Digest(id.to_string());
                    self.bus().publish(Event::ImageRemoved { id: id.clone() });
                    ImageDeleted::Deleted(id)
                }
            })
            .collect()
    }

    pub(crate) async fn image_prune(&self, all: bool) -> Result<Reply, ApiError> {
        let in_use = self.image_use_counts()?;
        let (removed, freed) = {
            let _lock = self.lock().await?;
            self.images()
                .prune(all, &|id| in_use.contains_key(&id.to_string()))
                .map_err(|e| image_error("pruning images", e))?
        };
        let deleted: Vec<Digest> = removed
            .iter()
            .filter_map(|r| match r {
                image::Removed::Deleted(id) => Some(Digest(id.to_string())),
                image::Removed::Untagged(_) => None,
            })
            .collect();
        self.bus().publish(Event::ImagesPruned {
            removed: deleted.clone(),
            freed,
        });
        Ok(Reply::Pruned {
            removed: deleted.into_iter().map(|d| d.0).collect(),
            freed,
        })
    }

    pub(crate) async fn image_inspect(&self, reference: ImageRef) -> Result<Reply, ApiError> {
        let d = self
            .images()
            .inspect(reference.as_str())
            .map_err(|e| image_error(&format!("inspecting {reference}"), e))?;
        let c = &d.config.config;
        let value = serde_json::json!({
            "Id": d.summary.id.to_string(),
            "RepoTags": d.summary.names.iter().map(|n| n.familiar()).collect::<Vec<_>>(),
            "RepoDigests": d.summary.repo_digests,
            "Created": d.config.created,
            "Author": d.config.author,
            "Architecture": d.config.architecture,
            "Os": d.config.os,
            "Variant": d.config.variant,
            "Size": d.summary.size,
            "Config": {
                "User": c.user.clone().unwrap_or_default(),
                "Env": c.env,
                "Cmd": c.cmd,
                "Entrypoint": c.entrypoint,
                "WorkingDir": c.working_dir.clone().unwrap_or_default(),
                "Labels": c.labels,
                "ExposedPorts": c.exposed_ports.as_ref().map(|p| p.iter().map(|k| (k.clone(), serde_json::json!({}))).collect::<serde_json::Map<_, _>>()),
                "Volumes": c.volumes.as_ref().map(|p| p.iter().map(|k| (k.clone(), serde_json::json!({}))).collect::<serde_json::Map<_, _>>()),
                "StopSignal": c.stop_signal,
            },
            "RootFS": {
                "Type": "layers",
                "Layers": d.diff_ids.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
            },
            "Descriptor": {
                "mediaType": d.manifest_media_type,
                "digest": d.summary.digest.to_string(),
            },
        });
        Ok(Reply::Json(value))
    }

    pub(crate) async fn image_history(&self, reference: ImageRef) -> Result<Reply, ApiError> {
        let h = self
            .images()
            .history(reference.as_str())
            .map_err(|e| image_error(&format!("reading the history of {reference}"), e))?;
        let top = self.images().inspect(reference.as_str()).ok();
        let rows: Vec<serde_json::Value> = h
            .into_iter()
            .rev()
            .enumerate()
            .map(|(i, e)| {
                // Docker names the top entry by the image id (with its tags); older ones are
                // "<missing>": their intermediate images are not in the store.
                let (id, tags) = match (&top, i) {
                    (Some(d), 0) => (
                        d.summary.id.to_string(),
                        d.summary.names.iter().map(|n| n.familiar()).collect(),
                    ),
                    _ => ("<missing>".to_owned(), Vec::<String>::new()),
                };
                serde_json::json!({
                    "Id": id,
                    "Tags": tags,
                    "Created": created_unix(e.created.as_deref()).unwrap_or(0),
                    "CreatedBy": e.created_by,
                    "Comment": e.comment.unwrap_or_default(),
                    "Size": e.size,
                    "EmptyLayer": e.empty_layer,
                })
            })
            .collect();
        Ok(Reply::Json(serde_json::Value::Array(rows)))
    }
}

impl Dispatcher {
    pub(crate) async fn image_save(
        &self,
        references: Vec<ImageRef>,
        path: std::path::PathBuf,
    ) -> Result<Reply, ApiError> {
        if references.is_empty() {
            return Err(ApiError::InvalidArgument(
                "name at least one image to save".into(),
            ));
        }
        let names: Vec<String> = references.iter().map(|r| r.0.clone()).collect();
        let target = path.clone();
        self.images_blocking(move |s| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            s.save_to(&names, &target)
        })
        .await?
        .map_err(|e| image_error(&format!("saving to {}", path.display()), e))?;
        Ok(Reply::Done)
    }

    pub(crate) async fn image_load(&self, path: std::path::PathBuf) -> Result<Reply, ApiError> {
        let file = std::fs::File::open(&path)
            .map_err(|e| ApiError::InvalidArgument(format!("{}: {e}", path.display())))?;
        let loaded = {
            let _lock = self.lock().await?;
            self.images()
                .load(
                    std::io::BufReader::with_capacity(1 << 20, file),
                    &path.display().to_string(),
                )
                .map_err(|e| image_error(&format!("loading {}", path.display()), e))?
        };
        let out: Vec<(Digest, Vec<String>)> = loaded
            .into_iter()
            .map(|(id, names)| {
                (
                    Digest(id.to_string()),
                    names.iter().map(|n| n.familiar()).collect(),
                )
            })
            .collect();
        for (id, names) in &out {
            for tag in names {
                self.bus().publish(Event::ImageTagged {
                    id: id.clone(),
                    tag: tag.clone(),
                });
            }
            if names.is_empty() {
                self.bus().publish(Event::ImagePulled {
                    reference: ImageRef(id.0.clone()),
                    id: id.clone(),
                });
            }
        }
        Ok(Reply::Loaded(out))
    }

    pub(crate) async fn image_import(
        &self,
        path: std::path::PathBuf,
        reference: Option<ImageRef>,
    ) -> Result<Reply, ApiError> {
        let name = reference.as_ref().map(parse_reference).transpose()?;
        let file = std::fs::File::open(&path)
            .map_err(|e| ApiError::InvalidArgument(format!("{}: {e}", path.display())))?;
        let lock = self.lock().await?;
        let n = name.clone();
        let id = self
            .images_blocking(move |s| s.import(file, n.as_ref(), Default::default()))
            .await?
            .map_err(|e| image_error(&format!("importing {}", path.display()), e))?;
        drop(lock);
        let id = Digest(id.to_string());
        self.bus().publish(Event::ImageTagged {
            id: id.clone(),
            tag: name.map(|n| n.familiar()).unwrap_or_default(),
        });
        Ok(Reply::ImageId(id))
    }

    pub(crate) async fn registry_login(
        &self,
        registry: String,
        username: String,
        password: String,
    ) -> Result<Reply, ApiError> {
        // Checked with the registry before anything is stored.
        self.images()
            .login_verified(&registry, &username, &password)
            .await
            .map_err(|e| image_error(&format!("logging in to {registry}"), e))?;
        Ok(Reply::Done)
    }
}
