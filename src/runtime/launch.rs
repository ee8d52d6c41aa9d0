//! The parent side of container creation: cgroup, seccomp compile, clone into new namespaces,
//! id maps, and the sync protocol with [`super::init`].

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use super::caps::CapSets;
use super::cgroups::{Cgroup, Layout};
use super::error::{Result, RuntimeError};
use super::init::{self, InitConfig};
use super::seccomp;
use super::spec::{Spec, namespace_flag, namespace_proc_name};
use super::sys;

/// How to launch.
#[derive(Debug, Clone, Default)]
pub struct LaunchOpts {
    /// Stop before exec until [`Launched::start`].
    pub wait_for_start: bool,
    /// fds for the container's stdio (otherwise it inherits ours), ignored with a terminal.
    pub stdio: Option<[RawFd; 3]>,
    /// Where compiled default seccomp filters are cached ([`seccomp::cache_dir`]).
    pub seccomp_cache: Option<PathBuf>,
}

/// A container init that has been cloned (and maybe exec'd).
pub struct Launched {
    pub pid: i32,
    pub sock: Option<UnixStream>,
    pub master: Option<OwnedFd>,
    pub cgroup: Cgroup,
}

/// The cgroup path (relative to each hierarchy root) of a container.
pub fn cgroup_rel(spec: &Spec, id: &str) -> PathBuf {
    match spec.linux().cgroups_path.as_deref() {
        Some(p) if !p.is_empty() && !p.contains(':') => PathBuf::from(p.trim_start_matches('/')),
        _ => PathBuf::from("berth").join(id),
    }
}

/// Create the cgroup and clone the init. On error nothing is left behind.
pub fn launch(spec: Spec, bundle: &Path, id: &str, opts: &LaunchOpts) -> Result<Launched> {
    let layout = Layout::detect()?;
    super::trace_time("layout detected");
    let cgroup = Cgroup::host(layout.clone(), cgroup_rel(&spec, id));
    let resources = spec.linux().resources.clone().map(|mut r| {
        if !r.devices.is_empty() {
            r.devices.extend(implicit_device_rules(&spec));
        }
        r
    });
    if let Err(e) = cgroup.create(resources.as_ref()) {
        let _ = cgroup.destroy();
        return Err(e);
    }
    super::trace_time("cgroup created");
    match clone_init(spec, bundle, &cgroup, opts) {
        Ok((pid, sock, master)) => Ok(Launched {
            pid,
            sock,
            master,
            cgroup,
        }),
        Err(e) => {
            cgroup.kill_all();
            let _ = cgroup.destroy();
            Err(e)
        }
    }
}

/// The device cgroup must let the container use the nodes every container has (the OCI
/// default devices, /dev/console, /dev/ptmx, /dev/pts/*) and the spec's own devices, whatever
/// the spec's rules deny.
pub fn implicit_device_rules(spec: &Spec) -> Vec<super::spec::DeviceRule> {
    let rule = |kind: &str, major: i64, minor: Option<i64>| super::spec::DeviceRule {
        allow: true,
        kind: Some(kind.into()),
        major: Some(major),
        minor,
        access: Some("rwm".into()),
    };
    let mut v: Vec<_> = super::rootfs::default_devices()
        .iter()
        .map(|d| rule(&d.kind, d.major, Some(d.minor)))
        .collect();
    v.push(rule("c", 5, Some(1)));
    v.push(rule("c", 5, Some(2)));
    v.push(rule("c", 136, None));
    for d in &spec.linux().devices {
        v.push(rule(
            if d.kind == "u" { "c" } else { &d.kind },
            d.major,
            Some(d.minor),
        ));
    }
    v
}

fn clone_init(
    spec: Spec,
    bundle: &Path,
    cgroup: &Cgroup,
    opts: &LaunchOpts,
) -> Result<(i32, Option<UnixStream>, Option<OwnedFd>)> {
    let caps = match &spec.process().capabilities {
        Some(c) => Some(CapSets::from_spec(c)?),
        None => None,
    };
    let seccomp = seccomp::programs_for(
        &spec,
        spec.process().capabilities.as_ref(),
        opts.seccomp_cache.as_deref(),
    )?;
    super::trace_time("seccomp compiled");
    let mut flags = 0;
    let mut join = Vec::new();
    for ns in &spec.linux().namespaces {
        let f = namespace_flag(&ns.kind).expect("validated");
        match &ns.path {
            Some(p) => join.push((ns.kind.clone(), p.clone())),
            // cgroup ns is unshared by the init after it joined its cgroup.
            None if f != libc::CLONE_NEWCGROUP => flags |= f,
            None => {}
        }
    }
    // Namespaces to join are opened now, joined by the child before anything else.
    let mut join_fds = Vec::new();
    for (kind, p) in &join {
        let f = std::fs::File::open(p).map_err(|e| RuntimeError::io("open namespace", p, e))?;
        join_fds.push((kind.clone(), OwnedFd::from(f)));
    }
    let userns = spec.has_namespace("user");
    let overlay = spec.overlay()?;
    let cfg = InitConfig {
        rootfs: spec.rootfs(bundle),
        overlay,
        cgroup_mounts: cgroup.mounts(),
        cgroup_v2: cgroup.layout().is_v2(),
        caps,
        seccomp,
        wait_for_start: opts.wait_for_start,
        stdio: opts.stdio,
        spec,
    };
    let (mut parent, child) = UnixStream::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;
    // A pid namespace only applies to children: joining one by path needs setns before clone.
    for (kind, fd) in &join_fds {
        if kind == "pid" {
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWPID)
                .map_err(|e| RuntimeError::sys("setns pid", std::io::Error::from(e)))?;
        }
    }
    match sys::clone_fork(flags).map_err(|e| RuntimeError::sys("clone", e))? {
        sys::Forked::Child => {
            drop(parent);
            for (kind, fd) in &join_fds {
                if kind == "pid" {
                    continue;
                }
                let f =
                    nix::sched::CloneFlags::from_bits_truncate(namespace_flag(kind).unwrap_or(0));
                if let Err(e) = nix::sched::setns(fd, f) {
                    let mut c = child;
                    let _ = c.write_all(format!("Esetns {kind}: {e}").as_bytes());
                    sys::exit_now(1);
                }
            }
            drop(join_fds);
            init::run(&cfg, child)
        }
        sys::Forked::Parent(pid) => {
            drop(child);
            let result = (|| {
                let setup = (|| {
                    if userns {
                        write_id_maps(pid, &cfg.spec)?;
                        parent
                            .write_all(b"M")
                            .map_err(|e| RuntimeError::sys("sync", e))?;
                    }
                    // Join the cgroup from here (also right for a user namespace, where the
                    // child is unprivileged on the host) while the child sets up its mounts.
                    cgroup.add_pid(pid)?;
                    parent
                        .write_all(b"C")
                        .map_err(|e| RuntimeError::sys("sync", e))
                })();
                if setup.is_err() {
                    // The child may be waiting for us: stop it, but prefer its own error
                    // (it may have failed first, which is why we could not reach it).
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let mut master = None;
                let ready = read_until_ready(&mut parent, &mut master);
                let ready = match (setup, ready) {
                    (_, Err(e @ RuntimeError::Init(_))) => return Err(e),
                    (Err(e), _) => return Err(e),
                    (Ok(()), r) => r?,
                };
                if opts.wait_for_start && !ready {
                    return Err(RuntimeError::Init("init exited before it was ready".into()));
                }
                Ok(master)
            })();
            match result {
                Ok(master) => Ok((pid, opts.wait_for_start.then_some(parent), master)),
                Err(e) => {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                    Err(e)
                }
            }
        }
    }
}

/// Read init messages until `R` (true) or EOF after a successful exec (false).
fn read_until_ready(sock: &mut UnixStream, master: &mut Option<OwnedFd>) -> Result<bool> {
    loop {
        let mut buf = [0u8; 4096];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(|e| RuntimeError::sys("read sync socket", std::io::Error::from(e)))?;
            let mut fd = None;
            if let Ok(cms) = msg.cmsgs() {
                for c in cms {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        fd = fds.first().copied();
                    }
                }
            }
            (msg.bytes, fd)
        };
        if let Some(fd) = fd {
            *master = Some(sys::owned_raw(fd));
        }
        if n == 0 {
            return Ok(false);
        }
        match buf[0] {
            b'P' if n == 1 => continue,
            b'R' if n == 1 => return Ok(true),
            b'E' => {
                let mut rest = buf[1..n].to_vec();
                let _ = sock.read_to_end(&mut rest);
                return Err(RuntimeError::Init(
                    String::from_utf8_lossy(&rest).into_owned(),
                ));
            }
            b'P' => {
                // 'P' coalesced with what follows: handle the tail.
                match buf[1] {
                    b'R' => return Ok(true),
                    b'E' => {
                        let mut rest = buf[2..n].to_vec();
                        let _ = sock.read_to_end(&mut rest);
                        return Err(RuntimeError::Init(
                            String::from_utf8_lossy(&rest).into_owned(),
                        ));
                    }
                    _ => continue,
                }
            }
            other => {
                return Err(RuntimeError::Init(format!(
                    "unexpected sync byte {other:#x}"
                )));
            }
        }
    }
}

/// Tell a waiting init to exec, and wait until it did (or failed).
pub fn start(sock: &mut UnixStream) -> Result<()> {
    sock.write_all(b"S")
        .map_err(|e| RuntimeError::sys("start: write sync socket", e))?;
    let mut rest = Vec::new();
    sock.read_to_end(&mut rest)
        .map_err(|e| RuntimeError::sys("start: read sync socket", e))?;
    match rest.first() {
        None => Ok(()),
        Some(b'E') => Err(RuntimeError::Init(
            String::from_utf8_lossy(&rest[1..]).into_owned(),
        )),
        Some(_) => Err(RuntimeError::Init(format!(
            "unexpected sync data {:?}",
            String::from_utf8_lossy(&rest)
        ))),
    }
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let l = spec.linux();
    let fmt = |m: &[super::spec::IdMapping]| {
        m.iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect::<String>()
    };
    for (file, maps) in [("uid_map", &l.uid_mappings), ("gid_map", &l.gid_mappings)] {
        if maps.is_empty() {
            continue;
        }
        let p = format!("/proc/{pid}/{file}");
        std::fs::write(&p, fmt(maps)).map_err(|e| RuntimeError::io("write", p, e))?;
    }
    Ok(())
}

/// Paths of a running container's namespaces, for exec.
pub fn namespace_paths(pid: i32, spec: &Spec) -> Vec<(String, PathBuf)> {
    spec.linux()
        .namespaces
        .iter()
        .filter_map(|n| {
            namespace_proc_name(&n.kind)
                .map(|p| (n.kind.clone(), PathBuf::from(format!("/proc/{pid}/ns/{p}"))))
        })
        .collect()
}
