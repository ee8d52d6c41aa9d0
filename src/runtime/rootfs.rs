//! The container's filesystem view, built inside its new mount namespace: rootfs (bind or
//! overlay), the spec's mounts, /dev with the default device nodes, the console, pivot_root,
//! then masked and read-only paths and the read-only root.
//!
//! Every target is resolved with [`super::paths`] and mounted through `/proc/self/fd/N`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag};

use super::error::{IoContext, Result, RuntimeError};
use super::paths;
use super::spec::{Device, Mount, OverlayRootfs, Spec};

/// Flags and data parsed from OCI mount options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    pub flags: MsFlags,
    /// Flags to clear (from `rw`, `suid`…), only meaningful for remounts.
    pub clear: MsFlags,
    pub propagation: MsFlags,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

/// Parse OCI/fstab mount options.
pub fn parse_options(opts: &[String]) -> MountOpts {
    let mut m = MountOpts {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
        bind: false,
        recursive: false,
    };
    for o in opts {
        let (set, clear): (MsFlags, MsFlags) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => {
                m.bind = true;
                continue;
            }
            "rbind" => {
                m.bind = true;
                m.recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match o.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                m.propagation = base
                    | if o.starts_with('r') {
                        MsFlags::MS_REC
                    } else {
                        MsFlags::empty()
                    };
                continue;
            }
            "defaults" => continue,
            _ => {
                m.data.push(o.clone());
                continue;
            }
        };
        m.flags |= set;
        m.flags &= !clear;
        m.clear |= clear;
    }
    m
}

fn sys_err(op: impl Into<String>, e: nix::errno::Errno) -> RuntimeError {
    RuntimeError::sys(op, std::io::Error::from(e))
}

fn mnt(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &Path,
) -> Result<()> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        sys_err(
            format!(
                "mount {:?} ({}) on {}",
                src.unwrap_or(Path::new("none")),
                fstype.unwrap_or("bind"),
                what.display()
            ),
            e,
        )
    })
}

/// What the init needs to build the filesystem view.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub overlay: Option<OverlayRootfs>,
    /// (hierarchy mount point on the host, this container's cgroup dir), for /sys/fs/cgroup.
    pub cgroup_mounts: Vec<(PathBuf, PathBuf)>,
    pub cgroup_v2: bool,
    pub cgroupns: bool,
    pub userns: bool,
}

/// The default device nodes every container gets (OCI runtime spec "Default Devices").
pub fn default_devices() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(n, ma, mi)| Device {
        kind: "c".into(),
        path: PathBuf::from("/dev").join(n),
        major: *ma,
        minor: *mi,
        file_mode: Some(0o666),
        uid: Some(0),
        gid: Some(0),
    })
    .collect()
}

/// Everything before pivot_root. Returns the rootfs dir fd and, when `terminal`, the pty master
/// (the slave is already bound on /dev/console and returned second).
pub fn prepare(
    plan: &RootfsPlan<'_>,
    terminal: bool,
) -> Result<(OwnedFd, Option<(OwnedFd, OwnedFd)>)> {
    let spec = plan.spec;
    let linux = spec.linux();
    let prop = match linux.rootfs_propagation.as_deref() {
        Some(p) => parse_options(&[p.to_string()]).propagation,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    // Nothing we mount may propagate back to the host.
    mnt(
        None,
        Path::new("/"),
        None,
        prop | MsFlags::MS_REC,
        None,
        Path::new("/"),
    )?;

    let rootfs = &plan.rootfs;
    match &plan.overlay {
        Some(o) => {
            let lower: Vec<String> = o.lowerdirs.iter().map(|p| escape_overlay(p)).collect();
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.join(":"),
                escape_overlay(&o.upperdir),
                escape_overlay(&o.workdir)
            );
            if data.len() < 3500 {
                mnt(
                    Some(Path::new("overlay")),
                    rootfs,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(&data),
                    rootfs,
                )?;
            } else {
                mount_overlay_fsconfig(o, rootfs)?;
            }
        }
        None => mnt(
            Some(rootfs),
            rootfs,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            rootfs,
        )?,
    }
    // The rootfs mount itself must be private so pivot_root accepts it.
    mnt(None, rootfs, None, MsFlags::MS_PRIVATE, None, rootfs)?;
    let root = paths::open_dir(rootfs).ctx("open rootfs", rootfs)?;

    let mut dev_is_tmpfs = false;
    for m in &spec.mounts {
        if m.destination == Path::new("/dev") && m.kind.as_deref() == Some("tmpfs") {
            dev_is_tmpfs = true;
        }
        mount_one(plan, &root, m)?;
    }
    if dev_is_tmpfs
        || !spec
            .mounts
            .iter()
            .any(|m| m.destination == Path::new("/dev"))
    {
        create_devices(plan, &root)?;
    }
    let console = if terminal {
        Some(setup_console(&root)?)
    } else {
        None
    };
    Ok((root, console))
}

/// Many layers exceed mount(2)'s one-page option string: build the overlay with the new mount
/// API instead, one `lowerdir+` per layer (Linux 6.8+), and attach it.
fn mount_overlay_fsconfig(o: &OverlayRootfs, target: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| RuntimeError::BadRequest(format!("NUL in {p:?}")))
    };
    let lowers: Vec<CString> = o.lowerdirs.iter().map(|p| c(p)).collect::<Result<_>>()?;
    let upper = c(&o.upperdir)?;
    let work = c(&o.workdir)?;
    let mut opts: Vec<(&std::ffi::CStr, &std::ffi::CStr)> = lowers
        .iter()
        .map(|l| (c"lowerdir+", l.as_c_str()))
        .collect();
    opts.push((c"upperdir", &upper));
    opts.push((c"workdir", &work));
    let fd = super::sys::fsmount_detached(c"overlay", &opts, 0)
        .map_err(|e| RuntimeError::sys("overlay (fsconfig)", e))?;
    super::sys::move_mount_to(fd.as_fd(), &c(target)?)
        .map_err(|e| RuntimeError::sys(format!("move_mount overlay to {}", target.display()), e))
}

fn escape_overlay(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

fn mount_one(plan: &RootfsPlan<'_>, root: &OwnedFd, m: &Mount) -> Result<()> {
    let o = parse_options(&m.options);
    let kind = m
        .kind
        .as_deref()
        .unwrap_or(if o.bind { "bind" } else { "none" });
    if kind == "cgroup" || kind == "cgroup2" {
        return mount_cgroup(plan, root, m, &o);
    }
    let is_bind = o.bind || kind == "bind";
    let target = if is_bind {
        let src = m.source.as_deref().ok_or_else(|| {
            RuntimeError::BadRequest(format!("bind mount {:?} has no source", m.destination))
        })?;
        let meta = std::fs::metadata(src).ctx("stat bind source", src)?;
        if meta.is_dir() {
            paths::mkdir_all(root.as_fd(), &m.destination)?
        } else {
            paths::touch(root.as_fd(), &m.destination)?
        }
    } else {
        paths::mkdir_all(root.as_fd(), &m.destination)?
    };
    let tp = paths::proc_fd(&target);
    if is_bind {
        let src = m.source.as_deref().expect("checked above");
        let rec = if o.recursive {
            MsFlags::MS_REC
        } else {
            MsFlags::empty()
        };
        mnt(
            Some(src),
            &tp,
            None,
            MsFlags::MS_BIND | rec,
            None,
            &m.destination,
        )?;
        // Bind flags only take effect on a remount; keep the flags the source mount already
        // has (nosuid/nodev/noexec) or the kernel refuses the remount in a user namespace.
        let fl = o.flags & !(MsFlags::MS_REC);
        if !fl.is_empty() {
            remount(root, &m.destination, fl)?;
        }
    } else {
        let data = o.data.join(",");
        let src = m.source.clone().unwrap_or_else(|| PathBuf::from(kind));
        let res = mnt(
            Some(&src),
            &tp,
            Some(kind),
            o.flags,
            (!data.is_empty()).then_some(data.as_str()),
            &m.destination,
        );
        if let Err(e) = res {
            // sysfs cannot be mounted without our own network namespace: bind the host's, ro.
            if kind == "sysfs" && !plan.spec.has_namespace("network") {
                mnt(
                    Some(Path::new("/sys")),
                    &tp,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                    &m.destination,
                )?;
                remount(
                    root,
                    &m.destination,
                    MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                )?;
            } else {
                return Err(e);
            }
        }
    }
    if !o.propagation.is_empty() {
        let fd = paths::open_in_root(root.as_fd(), &m.destination, OFlag::O_NOFOLLOW)
            .ctx("reopen", &m.destination)?;
        mnt(
            None,
            &paths::proc_fd(&fd),
            None,
            o.propagation,
            None,
            &m.destination,
        )?;
    }
    Ok(())
}

/// Remount the mount now at `dest` (resolved afresh: an fd opened before the mount names the
/// covered directory, not the new mount) with `flags` added to the ones it already has.
fn remount(root: &OwnedFd, dest: &Path, flags: MsFlags) -> Result<()> {
    let fd = paths::open_in_root(root.as_fd(), dest, OFlag::O_NOFOLLOW).ctx("reopen", dest)?;
    let tp = paths::proc_fd(&fd);
    let cur = statvfs_flags(&tp);
    mnt(
        None,
        &tp,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | cur,
        None,
        dest,
    )
}

fn statvfs_flags(p: &Path) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let Ok(s) = nix::sys::statvfs::statvfs(p) else {
        return MsFlags::empty();
    };
    let f = s.flags();
    let mut m = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(a) {
            m |= b;
        }
    }
    m
}

/// /sys/fs/cgroup: the container's own cgroup directories, read-only.
fn mount_cgroup(plan: &RootfsPlan<'_>, root: &OwnedFd, m: &Mount, o: &MountOpts) -> Result<()> {
    let target = paths::mkdir_all(root.as_fd(), &m.destination)?;
    let tp = paths::proc_fd(&target);
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if plan.cgroup_v2 {
        if plan.cgroupns {
            return mnt(
                Some(Path::new("cgroup2")),
                &tp,
                Some("cgroup2"),
                flags | (o.flags & MsFlags::MS_RDONLY),
                None,
                &m.destination,
            );
        }
        let (_, dir) = plan
            .cgroup_mounts
            .first()
            .ok_or_else(|| RuntimeError::Init("no cgroup v2 mount".into()))?;
        mnt(Some(dir), &tp, None, MsFlags::MS_BIND, None, &m.destination)?;
        return remount(root, &m.destination, flags | (o.flags & MsFlags::MS_RDONLY));
    }
    mnt(
        Some(Path::new("tmpfs")),
        &tp,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
        &m.destination,
    )?;
    // The tmpfs we just mounted is ours alone (no container process exists yet), so its
    // subdirectories are made and opened directly relative to it, without re-resolving the
    // path from the rootfs for every hierarchy.
    let dfd = paths::open_in_root(root.as_fd(), &m.destination, OFlag::O_DIRECTORY)
        .ctx("open", &m.destination)?;
    let ro = o.flags & MsFlags::MS_RDONLY;
    for (hier, dir) in &plan.cgroup_mounts {
        let Some(name) = hier.file_name() else {
            continue;
        };
        let sub = m.destination.join(name);
        match nix::sys::stat::mkdirat(
            dfd.as_fd(),
            name,
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(sys_err(format!("mkdir {}", sub.display()), e)),
        }
        let t = nix::fcntl::openat(
            dfd.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| sys_err(format!("open {}", sub.display()), e))?;
        mnt(
            Some(dir),
            &paths::proc_fd(&t),
            None,
            MsFlags::MS_BIND,
            None,
            &sub,
        )?;
        if plan.userns {
            remount(root, &sub, flags | ro)?;
        } else {
            // Outside a user namespace no flag is locked: remount with exactly these flags
            // (through a fresh open, which names the new mount).
            let t2 = nix::fcntl::openat(
                dfd.as_fd(),
                name,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| sys_err(format!("open {}", sub.display()), e))?;
            mnt(
                None,
                &paths::proc_fd(&t2),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | ro | MsFlags::MS_RELATIME,
                None,
                &sub,
            )?;
        }
        // co-mounted controllers (cpu,cpuacct) also get their single names as symlinks
        let n = name.to_string_lossy();
        if n.contains(',') {
            for single in n.split(',') {
                let _ = nix::unistd::symlinkat(n.as_ref(), dfd.as_fd(), single);
            }
        }
    }
    if o.flags.contains(MsFlags::MS_RDONLY) {
        let fd = paths::open_in_root(root.as_fd(), &m.destination, OFlag::O_DIRECTORY)
            .ctx("reopen", &m.destination)?;
        mnt(
            None,
            &paths::proc_fd(&fd),
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
            Some("mode=755"),
            &m.destination,
        )?;
    }
    Ok(())
}

fn create_devices(plan: &RootfsPlan<'_>, root: &OwnedFd) -> Result<()> {
    let dev = paths::mkdir_all(root.as_fd(), Path::new("/dev"))?;
    let mut devices = default_devices();
    for d in &plan.spec.linux().devices {
        devices.retain(|x| x.path != d.path);
        devices.push(d.clone());
    }
    for d in &devices {
        let rel = d
            .path
            .strip_prefix("/dev")
            .map_err(|_| RuntimeError::UnsafePath {
                path: d.path.clone(),
                reason: "device outside /dev".into(),
            })?;
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => {
                paths::mkdir_all(root.as_fd(), &Path::new("/dev").join(p))?
            }
            _ => paths::open_in_root(root.as_fd(), Path::new("/dev"), OFlag::O_DIRECTORY)
                .ctx("open", "/dev")?,
        };
        let name = rel.file_name().ok_or_else(|| RuntimeError::UnsafePath {
            path: d.path.clone(),
            reason: "no name".into(),
        })?;
        if plan.userns {
            // mknod is not allowed in a user namespace: bind the host's node instead.
            let f = paths::touch(root.as_fd(), &d.path)?;
            mnt(
                Some(&d.path),
                &paths::proc_fd(&f),
                None,
                MsFlags::MS_BIND,
                None,
                &d.path,
            )?;
            continue;
        }
        let kind = match d.kind.as_str() {
            "c" | "u" => SFlag::S_IFCHR,
            "b" => SFlag::S_IFBLK,
            "p" => SFlag::S_IFIFO,
            other => {
                return Err(RuntimeError::BadRequest(format!(
                    "device {:?}: type {other:?}",
                    d.path
                )));
            }
        };
        let mode = Mode::from_bits_truncate(d.file_mode.unwrap_or(0o666) & 0o7777);
        let devnum = nix::sys::stat::makedev(d.major as u64, d.minor as u64);
        match nix::sys::stat::mknodat(dev_parent(&parent), name, kind, mode, devnum) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => continue,
            Err(e) => return Err(sys_err(format!("mknod {}", d.path.display()), e)),
        }
        let _ = nix::unistd::fchownat(
            dev_parent(&parent),
            name,
            d.uid.map(nix::unistd::Uid::from_raw),
            d.gid.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(sys_err(format!("symlink /dev/{name}"), e)),
        }
    }
    // /dev/core only when the kernel has /proc/kcore (it does here).
    if Path::new("/proc/kcore").exists() {
        let _ = nix::unistd::symlinkat("/proc/kcore", dev.as_fd(), "core");
    }
    Ok(())
}

fn dev_parent(fd: &OwnedFd) -> std::os::fd::BorrowedFd<'_> {
    fd.as_fd()
}

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// Open a pty in the container's own devpts, verify both ends (CVE-2025-52565), and bind the
/// slave on /dev/console.
fn setup_console(root: &OwnedFd) -> Result<(OwnedFd, OwnedFd)> {
    let (master, slave) = open_pty_in(root)?;
    verify_pty_slave(&slave)?;
    let console = paths::touch(root.as_fd(), Path::new("/dev/console"))?;
    let cst = nix::sys::stat::fstat(&console).ctx("stat", "/dev/console")?;
    if SFlag::from_bits_truncate(cst.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(RuntimeError::UnsafePath {
            path: "/dev/console".into(),
            reason: "not a regular file we created".into(),
        });
    }
    mnt(
        Some(&paths::proc_fd(&slave)),
        &paths::proc_fd(&console),
        None,
        MsFlags::MS_BIND,
        None,
        Path::new("/dev/console"),
    )?;
    Ok((master, slave))
}

/// Open a new pty in the devpts mounted at `<root>/dev/pts`, checking that the ptmx we open
/// really is the devpts ptmx (not a node or symlink planted by the image).
pub fn open_pty_in(root: &OwnedFd) -> Result<(OwnedFd, OwnedFd)> {
    let ptmx = paths::open_in_root_rw(
        root.as_fd(),
        Path::new("/dev/pts/ptmx"),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NOFOLLOW,
    )
    .ctx("open", "/dev/pts/ptmx")?;
    let st = nix::sys::stat::fstat(&ptmx).ctx("stat", "/dev/pts/ptmx")?;
    let fs = nix::sys::statfs::fstatfs(&ptmx).ctx("statfs", "/dev/pts/ptmx")?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
        || nix::sys::stat::major(st.st_rdev) != 5
        || nix::sys::stat::minor(st.st_rdev) != 2
        || fs.filesystem_type().0 != DEVPTS_SUPER_MAGIC
    {
        return Err(RuntimeError::UnsafePath {
            path: "/dev/pts/ptmx".into(),
            reason: "not the devpts ptmx".into(),
        });
    }
    super::sys::pty_pair(ptmx).map_err(|e| RuntimeError::sys("open pty", e))
}

/// A pty slave is a char device with a Unix98 pty major (136–143) on devpts.
pub fn verify_pty_slave(fd: &OwnedFd) -> Result<()> {
    let st = nix::sys::stat::fstat(fd)
        .map_err(|e| RuntimeError::sys("stat pty", std::io::Error::from(e)))?;
    let fs = nix::sys::statfs::fstatfs(fd)
        .map_err(|e| RuntimeError::sys("statfs pty", std::io::Error::from(e)))?;
    let major = nix::sys::stat::major(st.st_rdev);
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
        || !(136..=143).contains(&major)
        || fs.filesystem_type().0 as i64 != DEVPTS_SUPER_MAGIC
    {
        return Err(RuntimeError::UnsafePath {
            path: "pty".into(),
            reason: "not a devpts pty slave".into(),
        });
    }
    Ok(())
}

/// pivot_root into the rootfs and detach the old root.
pub fn pivot(root: &OwnedFd) -> Result<()> {
    nix::unistd::fchdir(root.as_fd()).map_err(|e| sys_err("fchdir rootfs", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| sys_err("pivot_root", e))?;
    // The old root is now stacked on top of the new one at "/": make it a slave so the detach
    // cannot propagate to the host, then detach it.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| sys_err("make old root rslave", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| sys_err("detach old root", e))?;
    nix::unistd::chdir("/").map_err(|e| sys_err("chdir /", e))?;
    Ok(())
}

/// After pivot_root: sysctls, masked paths, read-only paths, read-only root.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux();
    let root = paths::open_dir(Path::new("/")).ctx("open", "/")?;
    for (k, v) in &linux.sysctl {
        let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        let fd =
            paths::open_in_root_rw(root.as_fd(), &p, OFlag::O_WRONLY).ctx("open sysctl", &p)?;
        nix::unistd::write(&fd, v.as_bytes()).ctx("write sysctl", &p)?;
    }
    if !linux.masked_paths.is_empty() {
        let null = paths::open_in_root(root.as_fd(), Path::new("/dev/null"), OFlag::O_NOFOLLOW)
            .ctx("open", "/dev/null")?;
        verify_dev_null(&null)?;
        for p in &linux.masked_paths {
            let p = Path::new(p);
            let fd = match paths::open_in_root(root.as_fd(), p, OFlag::O_NOFOLLOW) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(RuntimeError::io("open masked path", p, e)),
            };
            let st = nix::sys::stat::fstat(&fd).ctx("stat", p)?;
            let tp = paths::proc_fd(&fd);
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                mnt(
                    Some(Path::new("tmpfs")),
                    &tp,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    Some("size=0k,mode=555"),
                    p,
                )?;
            } else {
                mnt(
                    Some(&paths::proc_fd(&null)),
                    &tp,
                    None,
                    MsFlags::MS_BIND,
                    None,
                    p,
                )?;
            }
        }
    }
    for p in &linux.readonly_paths {
        let p = Path::new(p);
        let fd = match paths::open_in_root(root.as_fd(), p, OFlag::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(RuntimeError::io("open readonly path", p, e)),
        };
        let tp = paths::proc_fd(&fd);
        mnt(
            Some(&tp),
            &tp,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            p,
        )?;
        // After the bind, /proc/self/fd/N still names the underlying inode, not the new mount:
        // remount through a fresh lookup of the path.
        let fd2 = paths::open_in_root(root.as_fd(), p, OFlag::O_NOFOLLOW).ctx("reopen", p)?;
        let tp2 = paths::proc_fd(&fd2);
        let cur = statvfs_flags(&tp2);
        mnt(
            None,
            &tp2,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | cur,
            None,
            p,
        )?;
    }
    if spec.root.as_ref().map(|r| r.readonly).unwrap_or(false) {
        let cur = statvfs_flags(Path::new("/"));
        mnt(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | cur,
            None,
            Path::new("/"),
        )?;
    }
    let _ = root.as_raw_fd();
    Ok(())
}

/// /dev/null must really be the null device before we bind it over masked files
/// (CVE-2025-31133: a symlink or another file in its place would unmask a procfs file).
pub fn verify_dev_null(fd: &OwnedFd) -> Result<()> {
    let st = nix::sys::stat::fstat(fd).ctx("stat", "/dev/null")?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
        || nix::sys::stat::major(st.st_rdev) != 1
        || nix::sys::stat::minor(st.st_rdev) != 3
    {
        return Err(RuntimeError::UnsafePath {
            path: "/dev/null".into(),
            reason: "not the null device (1:3)".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = parse_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let b = parse_options(&["rbind".into(), "ro".into(), "rprivate".into()]);
        assert!(b.bind && b.recursive);
        assert_eq!(b.flags, MsFlags::MS_RDONLY);
        assert_eq!(b.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        let rw = parse_options(&["ro".into(), "rw".into()]);
        assert!(!rw.flags.contains(MsFlags::MS_RDONLY));
    }
}
