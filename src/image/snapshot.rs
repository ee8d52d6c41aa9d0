//! A container's root filesystem from an image: an overlayfs stack of the image's shared layer
//! directories plus a per-container upper dir (the runtime mounts it, inside the container's
//! mount namespace), or, where overlayfs is unavailable, a private copy of the merged layers.
//! Which one is chosen by a real trial mount when the store opens; its answer is remembered
//! for the rest of the boot (the trial's unmount costs 5-50 ms, on every engine start).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::ImageStore;
use super::config::ImageConfig;
use super::digest::{ImageId, chain_ids};
use super::error::{ImageError, Result};
use super::layers::LayerRecord;
use super::layout::Compression;
use super::unpack::OVERLAY_OPAQUE_XATTR;

/// How container root filesystems are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// overlayfs: layers as lowerdirs, a per-container upper dir.
    Overlay,
    /// A copy of the merged layers per container (slower, more disk; always works).
    Copy,
}

impl std::fmt::Display for SnapshotMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnapshotMode::Overlay => "overlay",
            SnapshotMode::Copy => "copy",
        })
    }
}

/// What the runtime needs to give a container its root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rootfs {
    /// Mount `overlay` with `lowerdir=<lowerdirs joined by ':'>,upperdir=…,workdir=…`.
    Overlay {
        /// Top layer first (overlayfs order).
        lowerdirs: Vec<PathBuf>,
        upperdir: PathBuf,
        workdir: PathBuf,
    },
    /// A ready, private directory tree: bind-mount it.
    Copy { dir: PathBuf },
}

impl Rootfs {
    /// The overlay mount data string, for overlay snapshots.
    pub fn overlay_options(&self) -> Option<String> {
        match self {
            Rootfs::Overlay {
                lowerdirs,
                upperdir,
                workdir,
            } => Some(format!(
                "lowerdir={},upperdir={},workdir={}",
                lowerdirs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
                upperdir.display(),
                workdir.display()
            )),
            Rootfs::Copy { .. } => None,
        }
    }
}

/// A prepared rootfs and the image config the container runs with.
#[derive(Debug, Clone)]
pub struct PreparedRootfs {
    pub image: ImageId,
    pub rootfs: Rootfs,
    /// The whole config; `config.config` holds entrypoint, cmd, env, workdir, user, exposed
    /// ports, volumes, stop signal and labels.
    pub config: ImageConfig,
}

/// Where [`probe_cached`] keeps the probe's answer: `<mode> <boot id>`.
pub const PROBE_MARKER: &str = ".snapshot-probe";

/// [`probe`]'s answer for `dir`, probing only once per boot: the answer is kept in the file
/// `marker` (outside the layer directory) with the kernel's boot id, and a marker from another
/// boot (or an unreadable one) means probing again. Without a boot id it always probes.
pub fn probe_cached(dir: &Path, marker: &Path) -> SnapshotMode {
    let Some(boot) = fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
    else {
        return probe(dir);
    };
    if let Some(mode) = fs::read_to_string(marker)
        .ok()
        .and_then(|m| parse_marker(&m, &boot))
    {
        return mode;
    }
    let mode = probe(dir);
    // A cache: written atomically, no fsync (a lost or torn marker only means probing again).
    let tmp = marker.with_extension(format!("tmp-{}", std::process::id()));
    if fs::write(&tmp, format!("{mode} {boot}\n")).is_ok() && fs::rename(&tmp, marker).is_err() {
        let _ = fs::remove_file(&tmp);
    }
    mode
}

fn parse_marker(text: &str, boot: &str) -> Option<SnapshotMode> {
    let (mode, id) = text.trim().split_once(' ')?;
    if id != boot {
        return None;
    }
    match mode {
        "overlay" => Some(SnapshotMode::Overlay),
        "copy" => Some(SnapshotMode::Copy),
        _ => None,
    }
}

/// Tries a real overlay mount under `dir`; Copy if it fails for any reason.
pub fn probe(dir: &Path) -> SnapshotMode {
    // Named with this process's pid: another berth's cleanup of stale temp dirs leaves it be.
    let base = dir.join(format!("{}-probe", super::store::owned_temp_name(".tmp-")));
    let mode = (|| -> io::Result<SnapshotMode> {
        for d in ["l", "u", "w", "m"] {
            fs::create_dir_all(base.join(d))?;
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.join("l").display(),
            base.join("u").display(),
            base.join("w").display()
        );
        match mount(
            Some("overlay"),
            &base.join("m"),
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        ) {
            Ok(()) => {
                let _ = umount2(&base.join("m"), MntFlags::MNT_DETACH);
                Ok(SnapshotMode::Overlay)
            }
            Err(_) => Ok(SnapshotMode::Copy),
        }
    })()
    .unwrap_or(SnapshotMode::Copy);
    let _ = fs::remove_dir_all(&base);
    mode
}

impl ImageStore {
    /// Makes sure every layer of the image is unpacked, unpacking missing ones from their
    /// stored blobs. Returns the layer directories, bottom first.
    pub(crate) fn ensure_layers(
        &self,
        img: &super::ops::Image,
        config: &ImageConfig,
    ) -> Result<Vec<PathBuf>> {
        let chains = chain_ids(&config.rootfs.diff_ids);
        let mut dirs = Vec::new();
        for ((chain, diff), l) in chains
            .iter()
            .zip(&config.rootfs.diff_ids)
            .zip(&img.manifest.layers)
        {
            if !self.layers.exists(chain) {
                let staging = self.layers.staging(chain)?;
                let file = self.content.open_blob(&l.digest)?;
                let res = Compression::of_media_type(&l.media_type).and_then(|c| {
                    let r = io::BufReader::with_capacity(1 << 20, file);
                    let (got, stats) = super::unpack::unpack_compressed(
                        r,
                        c,
                        &staging,
                        l.digest.as_str(),
                        Some(l.size),
                    )?;
                    if &got != diff {
                        return Err(ImageError::DigestMismatch {
                            what: format!("uncompressed layer {} (diff id)", l.digest),
                            expected: diff.clone(),
                            actual: got,
                        });
                    }
                    Ok(stats)
                });
                match res {
                    Ok(stats) => self.layers.commit(
                        &staging,
                        &LayerRecord {
                            chain_id: chain.clone(),
                            diff_id: diff.clone(),
                            size: stats.bytes,
                            entries: stats.entries,
                        },
                    )?,
                    Err(e) => {
                        self.layers.discard(&staging);
                        return Err(e);
                    }
                }
            }
            dirs.push(self.layers.path(chain));
        }
        Ok(dirs)
    }

    /// Prepares a container's rootfs from an image (name or id) inside `container_dir`: empty
    /// `upper/` and `work/` dirs for overlay, or a merged copy in `rootfs/`.
    pub fn prepare_rootfs(&self, image: &str, container_dir: &Path) -> Result<PreparedRootfs> {
        let img = self.resolve(image)?;
        let config = self.config_of(&img)?;
        let mut layers = self.ensure_layers(&img, &config)?;
        let mk = |p: &Path| fs::create_dir_all(p).map_err(|e| ImageError::io("create", p, e));
        mk(container_dir)?;
        let rootfs = match self.snapshot_mode {
            SnapshotMode::Overlay => {
                if layers.is_empty() {
                    // overlayfs needs a lowerdir: an image without layers gets an empty one.
                    let empty = container_dir.join("empty-lower");
                    mk(&empty)?;
                    layers.push(empty);
                }
                let upper = container_dir.join("upper");
                let work = container_dir.join("work");
                mk(&upper)?;
                mk(&work)?;
                fs::set_permissions(&upper, fs::Permissions::from_mode(0o755))
                    .map_err(|e| ImageError::io("chmod", &upper, e))?;
                layers.reverse();
                Rootfs::Overlay {
                    lowerdirs: layers,
                    upperdir: upper,
                    workdir: work,
                }
            }
            SnapshotMode::Copy => {
                let dir = container_dir.join("rootfs");
                mk(&dir)?;
                for l in &layers {
                    apply_layer_copy(l, &dir).map_err(|e| ImageError::io("copy layer", l, e))?;
                }
                Rootfs::Copy { dir }
            }
        };
        Ok(PreparedRootfs {
            image: img.id.clone(),
            rootfs,
            config,
        })
    }
}

/// Applies one unpacked layer (overlay-style whiteouts) on top of `dest`, as overlayfs would
/// show it: a 0/0 char device removes the path, an opaque dir replaces the directory's content.
/// Layer directories are ours and trusted; `dest` entries are never followed.
pub fn apply_layer_copy(layer: &Path, dest: &Path) -> io::Result<()> {
    let mut dirs: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    copy_dir(layer, dest, &mut dirs)?;
    for (p, m) in dirs.iter().rev() {
        set_times(p, m)?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn set_times(p: &Path, m: &fs::Metadata) -> io::Result<()> {
    let t = nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

fn copy_dir(src: &Path, dst: &Path, dirs: &mut Vec<(PathBuf, fs::Metadata)>) -> io::Result<()> {
    for e in fs::read_dir(src)? {
        let e = e?;
        let s = e.path();
        let d = dst.join(e.file_name());
        let m = fs::symlink_metadata(&s)?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            remove_any(&d)?; // whiteout
            continue;
        }
        if ft.is_dir() {
            let opaque = xattr::get(&s, OVERLAY_OPAQUE_XATTR)?.as_deref() == Some(b"y");
            match fs::symlink_metadata(&d) {
                Ok(dm) if dm.is_dir() && !opaque => {}
                Ok(_) => {
                    remove_any(&d)?;
                    fs::create_dir(&d)?;
                }
                Err(_) => fs::create_dir(&d)?,
            }
            std::os::unix::fs::lchown(&d, Some(m.uid()), Some(m.gid()))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(m.mode() & 0o7777))?;
            copy_xattrs(&s, &d)?;
            copy_dir(&s, &d, dirs)?;
            dirs.push((d, m));
            continue;
        }
        remove_any(&d)?;
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&s)?, &d)?;
        } else if ft.is_file() {
            fs::copy(&s, &d)?;
        } else {
            let kind = if ft.is_char_device() {
                nix::sys::stat::SFlag::S_IFCHR
            } else if ft.is_block_device() {
                nix::sys::stat::SFlag::S_IFBLK
            } else if ft.is_fifo() {
                nix::sys::stat::SFlag::S_IFIFO
            } else {
                continue; // sockets are not image content
            };
            nix::sys::stat::mknod(
                &d,
                kind,
                nix::sys::stat::Mode::from_bits_truncate(m.mode()),
                m.rdev(),
            )
            .map_err(io::Error::from)?;
        }
        std::os::unix::fs::lchown(&d, Some(m.uid()), Some(m.gid()))?;
        if !ft.is_symlink() {
            fs::set_permissions(&d, fs::Permissions::from_mode(m.mode() & 0o7777))?;
            copy_xattrs(&s, &d)?;
        }
        set_times(&d, &m)?;
    }
    Ok(())
}

fn copy_xattrs(s: &Path, d: &Path) -> io::Result<()> {
    for name in xattr::list(s)? {
        if name.to_string_lossy().starts_with("trusted.overlay.") {
            continue;
        }
        if let Some(v) = xattr::get(s, &name)? {
            xattr::set(d, &name, &v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn marker_from_this_boot_only() {
        assert_eq!(
            parse_marker("overlay b1\n", "b1"),
            Some(SnapshotMode::Overlay)
        );
        assert_eq!(parse_marker("copy b1", "b1"), Some(SnapshotMode::Copy));
        assert_eq!(parse_marker("overlay b0\n", "b1"), None);
        assert_eq!(parse_marker("zfs b1", "b1"), None);
        assert_eq!(parse_marker("", "b1"), None);
    }

    /// The real probe runs once; later opens read its answer; a marker of another boot (or a
    /// torn one) is probed again and replaced.
    #[test]
    fn probe_is_remembered_for_the_boot() {
        let dir = tempfile::tempdir().unwrap();
        let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let marker = dir.path().join(PROBE_MARKER);
        let mode = probe_cached(dir.path(), &dir.path().join(PROBE_MARKER));
        assert_eq!(mode, probe(dir.path()));
        assert_eq!(
            fs::read_to_string(&marker).unwrap(),
            format!("{mode} {}\n", boot.trim())
        );
        // the answer now comes from the marker: a forged one for this boot is believed
        let other = match mode {
            SnapshotMode::Overlay => SnapshotMode::Copy,
            SnapshotMode::Copy => SnapshotMode::Overlay,
        };
        fs::write(&marker, format!("{other} {}", boot.trim())).unwrap();
        assert_eq!(
            probe_cached(dir.path(), &dir.path().join(PROBE_MARKER)),
            other
        );
        // another boot's marker, or garbage: probed again, marker rewritten
        for stale in [format!("{other} not-this-boot"), "garbage".to_owned()] {
            fs::write(&marker, stale).unwrap();
            assert_eq!(
                probe_cached(dir.path(), &dir.path().join(PROBE_MARKER)),
                mode
            );
            assert!(
                fs::read_to_string(&marker)
                    .unwrap()
                    .starts_with(&format!("{mode} "))
            );
        }
        // nothing else is left behind in the directory
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![PROBE_MARKER.to_owned()]);
    }
}
