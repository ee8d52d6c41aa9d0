//! Named volumes: directories under `<root>/volumes/NAME/_data`, with `meta.json` beside them.
//! A container's `-v NAME:/path` creates the volume when it does not exist, and a volume that
//! is still empty and never initialised gets the image's content at `/path` first (Docker's
//! copy-up: an image's VOLUME directory seeds a fresh volume).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::dispatch::Dispatcher;
use crate::api::error::ApiError;
use crate::api::reply::Reply;
use crate::api::types::*;
use crate::runtime;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    created: i64,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Whether the first container's image content was copied in (or the volume was used
    /// already): it happens once.
    #[serde(default)]
    initialised: bool,
}

pub(crate) fn valid_volume_name(n: &str) -> bool {
    n.len() >= 2
        && n.len() <= 255
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn io_err(context: &str, path: &Path, e: impl std::fmt::Display) -> ApiError {
    ApiError::engine(format!("{context} {}", path.display()), e)
}

/// The named volume a `-v` source names, if it is not a host path.
pub(crate) fn volume_name_of(spec: &str) -> Option<&str> {
    let src = spec.split(':').next()?;
    (!src.starts_with('/') && !src.is_empty()).then_some(src)
}

/// Add an anonymous volume (a random 64-hex name) for each of the image's `VOLUME` paths
/// that no `-v`, `--mount` or `--tmpfs` of the config covers.
pub(crate) fn with_anonymous_volumes(
    mut cfg: ContainerConfig,
    image_volumes: &[String],
) -> ContainerConfig {
    let anonymous = || {
        let a: u128 = rand::random();
        let b: u128 = rand::random();
        format!("{a:032x}{b:032x}")
    };
    // `-v /path` (no source) is an anonymous volume too.
    for v in cfg.volumes.iter_mut() {
        if !v.contains(':') && v.starts_with('/') {
            *v = format!("{}:{v}", anonymous());
        }
    }
    for path in image_volumes {
        let p = Path::new(path);
        let covered = cfg
            .volumes
            .iter()
            .filter_map(|v| v.split(':').nth(1))
            .chain(cfg.tmpfs.iter().map(|t| t.split(':').next().unwrap_or(t)))
            .any(|d| Path::new(d) == p);
        if !covered && p.is_absolute() {
            cfg.volumes.push(format!("{}:{path}", anonymous()));
        }
    }
    cfg
}

impl Dispatcher {
    /// Docker's `Mounts` of a container's inspect: its binds and named volumes (`-v`,
    /// `--mount`), as configured.
    pub(crate) fn mounts_json(&self, cfg: &ContainerConfig) -> serde_json::Value {
        let mounts: Vec<serde_json::Value> = cfg
            .volumes
            .iter()
            .filter_map(|v| {
                let mut parts = v.splitn(3, ':');
                let (src, dst) = (parts.next()?, parts.next()?);
                let mode = parts.next().unwrap_or_default();
                let rw = !mode.split(',').any(|o| o == "ro");
                Some(if src.starts_with('/') {
                    serde_json::json!({
                        "Type": "bind", "Source": src, "Destination": dst, "Mode": mode,
                        "RW": rw, "Propagation": "rprivate",
                    })
                } else {
                    let source = self
                        .volume_dir(src)
                        .map(|d| d.join("_data").display().to_string())
                        .unwrap_or_default();
                    serde_json::json!({
                        "Type": "volume", "Name": src, "Source": source, "Destination": dst,
                        "Driver": "local", "Mode": mode, "RW": rw, "Propagation": "",
                    })
                })
            })
            .collect();
        serde_json::Value::Array(mounts)
    }
}

impl Dispatcher {
    fn volumes_dir(&self) -> PathBuf {
        self.root().path().join("volumes")
    }

    fn volume_dir(&self, name: &str) -> Result<PathBuf, ApiError> {
        if !valid_volume_name(name) {
            return Err(ApiError::InvalidArgument(format!(
                "invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters"
            )));
        }
        Ok(self.volumes_dir().join(name))
    }

    fn read_meta(&self, name: &str) -> Result<Meta, ApiError> {
        let p = self.volume_dir(name)?.join("meta.json");
        match std::fs::read(&p) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| io_err("parsing", &p, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ApiError::InvalidArgument(format!("no such volume: {name}")))
            }
            Err(e) => Err(io_err("reading", &p, e)),
        }
    }

    fn write_meta(&self, name: &str, m: &Meta) -> Result<(), ApiError> {
        let p = self.volume_dir(name)?.join("meta.json");
        let data = serde_json::to_vec_pretty(m).expect("volume meta serialises");
        runtime::state::write_atomic(&p, &data).map_err(|e| io_err("writing", &p, e))
    }

    /// Create a volume unless it exists; whether it was created.
    fn ensure_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<bool, ApiError> {
        let dir = self.volume_dir(name)?;
        if dir.join("meta.json").exists() {
            return Ok(false);
        }
        let data = dir.join("_data");
        std::fs::create_dir_all(&data).map_err(|e| io_err("creating", &data, e))?;
        self.write_meta(
            name,
            &Meta {
                created: time::OffsetDateTime::now_utc().unix_timestamp(),
                labels,
                initialised: false,
            },
        )?;
        Ok(true)
    }

    /// Names of containers using each volume.
    fn volume_users(&self) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for st in self.runtime().list().unwrap_or_default() {
            if let Some(r) = self.record_of(&st.id) {
                for v in &r.config.volumes {
                    if let Some(n) = volume_name_of(v) {
                        m.entry(n.to_owned()).or_default().push(r.name.clone());
                    }
                }
            }
        }
        m
    }

    fn volume_info(
        &self,
        name: &str,
        users: &BTreeMap<String, Vec<String>>,
    ) -> Result<VolumeInfo, ApiError> {
        let m = self.read_meta(name)?;
        Ok(VolumeInfo {
            name: name.to_owned(),
            driver: "local".into(),
            mountpoint: self.volume_dir(name)?.join("_data").display().to_string(),
            created: m.created,
            labels: m.labels,
            used_by: users.get(name).cloned().unwrap_or_default(),
        })
    }

    fn volume_names(&self) -> Result<Vec<String>, ApiError> {
        let d = self.volumes_dir();
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("listing", &d, e)),
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".rm-") {
                // Left by a process that ended before its background delete did.
                let p = e.path();
                std::thread::spawn(move || {
                    let _ = std::fs::remove_dir_all(p);
                });
            } else if valid_volume_name(&n) && e.path().join("meta.json").exists() {
                out.push(n);
            }
        }
        out.sort();
        Ok(out)
    }

    pub(crate) async fn volume_list(&self) -> Result<Reply, ApiError> {
        let users = self.volume_users();
        let list = self
            .volume_names()?
            .iter()
            .map(|n| self.volume_info(n, &users))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Reply::Volumes(list))
    }

    pub(crate) async fn volume_create(
        &self,
        name: Option<String>,
        labels: Vec<(String, String)>,
    ) -> Result<Reply, ApiError> {
        let name = name.unwrap_or_else(|| {
            let a: u128 = rand::random();
            let b: u128 = rand::random();
            format!("{a:032x}{b:032x}")
        });
        let _lock = self.lock().await?;
        self.ensure_volume(&name, labels.into_iter().collect())?;
        Ok(Reply::Volume(
            self.volume_info(&name, &self.volume_users())?,
        ))
    }

    pub(crate) async fn volume_inspect(&self, name: String) -> Result<Reply, ApiError> {
        Ok(Reply::Volume(
            self.volume_info(&name, &self.volume_users())?,
        ))
    }

    fn remove_volume_dir(&self, name: &str) -> Result<(), ApiError> {
        let dir = self.volume_dir(name)?;
        // Out of sight at once (one rename), deleted at leisure: large volumes are slow to
        // delete on some disks.
        let trash = self
            .volumes_dir()
            .join(format!(".rm-{name}-{}", std::process::id()));
        std::fs::rename(&dir, &trash).map_err(|e| io_err("removing", &dir, e))?;
        std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(trash);
        });
        Ok(())
    }

    pub(crate) async fn volume_remove(&self, name: String) -> Result<Reply, ApiError> {
        let _lock = self.lock().await?;
        self.read_meta(&name)?;
        if let Some(users) = self.volume_users().get(&name) {
            return Err(ApiError::Conflict(format!(
                "volume {name} is in use by {}",
                users.join(", ")
            )));
        }
        self.remove_volume_dir(&name)?;
        Ok(Reply::Done)
    }

    pub(crate) async fn volume_prune(&self) -> Result<Reply, ApiError> {
        let _lock = self.lock().await?;
        let users = self.volume_users();
        let mut removed = Vec::new();
        let mut freed = 0;
        for n in self.volume_names()? {
            if users.contains_key(&n) {
                continue;
            }
            freed += du(&self.volume_dir(&n)?.join("_data"));
            self.remove_volume_dir(&n)?;
            removed.push(n);
        }
        Ok(Reply::Pruned { removed, freed })
    }

    /// Turn named-volume binds (a relative source: the volume's name) into binds of the
    /// volume's directory, creating and seeding volumes as needed. Call under the root lock.
    pub(crate) fn resolve_volume_binds(
        &self,
        binds: Vec<runtime::BindMount>,
        rootfs: &crate::image::Rootfs,
    ) -> Result<Vec<runtime::BindMount>, ApiError> {
        let mut out = Vec::with_capacity(binds.len());
        for mut b in binds {
            if b.source.is_absolute() {
                out.push(b);
                continue;
            }
            let name = b.source.to_string_lossy().into_owned();
            self.ensure_volume(&name, BTreeMap::new())?;
            let data = self.volume_dir(&name)?.join("_data");
            let mut meta = self.read_meta(&name)?;
            if !meta.initialised {
                let empty = std::fs::read_dir(&data)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if empty {
                    seed_from_image(rootfs, &b.destination, &data)
                        .map_err(|e| io_err("copying the image's content into volume", &data, e))?;
                }
                meta.initialised = true;
                self.write_meta(&name, &meta)?;
            }
            b.source = data;
            out.push(b);
        }
        Ok(out)
    }
}

fn du(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if m.is_dir() {
        std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| du(&e.path())).sum())
            .unwrap_or(0)
    } else {
        m.len()
    }
}

/// Copy what the image has at `dest` (merged over its layers, bottom first, whiteouts and
/// opaque directories honoured) into an empty volume directory, owners and modes kept.
fn seed_from_image(
    rootfs: &crate::image::Rootfs,
    dest: &Path,
    volume: &Path,
) -> std::io::Result<()> {
    let rel = dest.strip_prefix("/").unwrap_or(dest);
    let layers: Vec<PathBuf> = match rootfs {
        crate::image::Rootfs::Overlay { lowerdirs, .. } => {
            lowerdirs.iter().rev().cloned().collect()
        }
        crate::image::Rootfs::Copy { dir } => vec![dir.clone()],
    };
    let mut any = false;
    for l in layers {
        // Only a real directory inside the layer (never through a symlink out of it).
        let src = l.join(rel);
        match std::fs::symlink_metadata(&src) {
            Ok(m) if m.is_dir() => {
                copy_layer_dir(&src, volume)?;
                any = true;
            }
            _ => {}
        }
    }
    if any {
        // The volume's root takes the directory's owner and mode, as Docker's copy-up does.
        let top = match rootfs {
            crate::image::Rootfs::Overlay { lowerdirs, .. } => {
                lowerdirs.iter().map(|l| l.join(rel)).find(|p| p.is_dir())
            }
            crate::image::Rootfs::Copy { dir } => Some(dir.join(rel)),
        };
        if let Some(m) = top.and_then(|t| std::fs::symlink_metadata(t).ok()) {
            std::os::unix::fs::lchown(volume, Some(m.uid()), Some(m.gid()))?;
            std::fs::set_permissions(volume, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_char_device() && m.rdev() == 0
}

fn copy_layer_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    if xattr::get(src, "trusted.overlay.opaque")
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
    {
        for e in std::fs::read_dir(dst)?.flatten() {
            remove_any(&e.path())?;
        }
    }
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let m = std::fs::symlink_metadata(&from)?;
        if is_whiteout(&m) {
            remove_any(&to)?;
            continue;
        }
        if m.is_dir() {
            if !std::fs::symlink_metadata(&to).is_ok_and(|t| t.is_dir()) {
                remove_any(&to)?;
                std::fs::create_dir(&to)?;
            }
            copy_layer_dir(&from, &to)?;
        } else {
            remove_any(&to)?;
            if m.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            } else if m.is_file() {
                std::fs::copy(&from, &to)?;
            } else {
                // Devices, fifos, sockets are not volume content.
                continue;
            }
        }
        std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))?;
        if !m.file_type().is_symlink() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_volumes_not_mounted_get_anonymous_ones() {
        let cfg = ContainerConfig {
            volumes: vec!["/host:/data".into(), "/anon".into()],
            tmpfs: vec!["/scratch:size=1m".into()],
            ..Default::default()
        };
        let image = ["/data".to_owned(), "/scratch".into(), "/var/lib/db".into()];
        let cfg = with_anonymous_volumes(cfg, &image);
        assert_eq!(cfg.volumes.len(), 3, "{:?}", cfg.volumes);
        assert!(cfg.volumes[1].ends_with(":/anon"));
        let (name, dst) = cfg.volumes[2].split_once(':').unwrap();
        assert_eq!((name.len(), dst), (64, "/var/lib/db"));
        assert!(valid_volume_name(name));
    }

    #[test]
    fn volume_names_and_specs() {
        assert!(valid_volume_name("data"));
        assert!(valid_volume_name("my_vol.1-x"));
        assert!(!valid_volume_name("d"));
        assert!(!valid_volume_name("../x"));
        assert!(!valid_volume_name("-x"));
        assert_eq!(volume_name_of("data:/data:ro"), Some("data"));
        assert_eq!(volume_name_of("/host:/data"), None);
    }

    #[test]
    fn seeding_merges_layers_with_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let (low, up, vol) = (t.path().join("l0"), t.path().join("l1"), t.path().join("v"));
        for d in [low.join("data/sub"), up.join("data"), vol.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(low.join("data/a"), "a0").unwrap();
        std::fs::write(low.join("data/gone"), "x").unwrap();
        std::fs::write(low.join("data/sub/b"), "b").unwrap();
        std::fs::write(up.join("data/a"), "a1").unwrap();
        nix::sys::stat::mknod(
            &up.join("data/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let rootfs = crate::image::Rootfs::Overlay {
            lowerdirs: vec![up, low],
            upperdir: t.path().join("u"),
            workdir: t.path().join("w"),
        };
        seed_from_image(&rootfs, Path::new("/data"), &vol).unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "a1");
        assert_eq!(std::fs::read_to_string(vol.join("sub/b")).unwrap(), "b");
        assert!(
            !vol.join("gone").exists(),
            "a whiteout hides the lower file"
        );
    }
}
