//! Resolving Docker's `--user` (`name`, `uid`, `name:group`, `uid:gid`) against the image's
//! /etc/passwd and /etc/group, read safely inside the rootfs (or its layers, top first).

use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use super::error::{Result, RuntimeError};
use super::paths;
use super::request::Rootfs;

/// A resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups the user is listed in (/etc/group), as Docker adds them.
    pub additional_gids: Vec<u32>,
}

fn read_in_roots(roots: &[PathBuf], file: &str) -> Option<String> {
    for r in roots {
        let Ok(dir) = paths::open_dir(r) else {
            continue;
        };
        if let Ok(fd) = paths::open_in_root_rw(
            std::os::fd::AsFd::as_fd(&dir),
            Path::new(file),
            OFlag::O_RDONLY,
        ) {
            let mut s = String::new();
            if std::fs::File::from(fd).read_to_string(&mut s).is_ok() {
                return Some(s);
            }
        }
    }
    None
}

/// Resolve `spec` (Docker's `--user` syntax) for this rootfs. Numeric ids need no files; a
/// numeric uid with no passwd entry gets gid 0, as in Docker.
pub fn resolve_user(rootfs: &Rootfs, spec: &str) -> Result<ResolvedUser> {
    let roots: Vec<PathBuf> = match rootfs {
        Rootfs::Dir(d) => vec![d.clone()],
        Rootfs::Overlay(o) => {
            let mut v = vec![o.upperdir.clone()];
            v.extend(o.lowerdirs.iter().cloned());
            v
        }
    };
    let passwd = read_in_roots(&roots, "/etc/passwd").unwrap_or_default();
    let group = read_in_roots(&roots, "/etc/group").unwrap_or_default();
    resolve_with(&passwd, &group, spec)
}

/// The pure part of [`resolve_user`].
pub fn resolve_with(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser> {
    let bad = |why: &str| RuntimeError::BadRequest(format!("user {spec:?}: {why}"));
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() {
        return Err(bad("empty user"));
    }
    // name:x:uid:gid:...
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || f[2] == u));
    let (uid, name, pw_gid) = match (u.parse::<u32>(), &entry) {
        (_, Some(f)) => (
            f[2].parse().map_err(|_| bad("bad passwd entry"))?,
            Some(f[0].to_string()),
            f[3].parse::<u32>().ok(),
        ),
        (Ok(n), None) => (n, None, None),
        (Err(_), None) => return Err(bad("no such user in /etc/passwd")),
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| bad("no such group in /etc/group"))?,
        },
        None => pw_gid.unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (&name, g) {
        for f in group.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() >= 4
                && f[3].split(',').any(|m| m == name)
                && let Ok(id) = f[2].parse::<u32>()
                && id != gid
                && !additional_gids.contains(&id)
            {
                additional_gids.push(id);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nnobody:x:65534:65534::/:/bin/false\n";
    const GROUP: &str =
        "root:x:0:\nwww:x:33:\nadm:x:4:www,other\nstaff:x:50:www\nnogroup:x:65534:\n";

    #[test]
    fn docker_user_syntax() {
        let r = resolve_with(PASSWD, GROUP, "www").unwrap();
        assert_eq!(
            r,
            ResolvedUser {
                uid: 33,
                gid: 33,
                additional_gids: vec![4, 50]
            }
        );
        assert_eq!(resolve_with(PASSWD, GROUP, "33").unwrap().gid, 33);
        assert_eq!(
            resolve_with(PASSWD, GROUP, "1234").unwrap(),
            ResolvedUser {
                uid: 1234,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            resolve_with(PASSWD, GROUP, "www:adm").unwrap(),
            ResolvedUser {
                uid: 33,
                gid: 4,
                additional_gids: vec![]
            }
        );
        assert_eq!(resolve_with(PASSWD, GROUP, "1000:1000").unwrap().gid, 1000);
        assert!(resolve_with(PASSWD, GROUP, "ghost").is_err());
        assert!(resolve_with(PASSWD, GROUP, "www:nogrp").is_err());
        assert!(resolve_with(PASSWD, GROUP, ":0").is_err());
    }

    #[test]
    fn reads_layers_top_first_without_leaving_the_root() {
        let t = tempfile::tempdir().unwrap();
        let low = t.path().join("low");
        let up = t.path().join("up");
        std::fs::create_dir_all(low.join("etc")).unwrap();
        std::fs::create_dir_all(&up).unwrap();
        std::fs::write(low.join("etc/passwd"), "app:x:1000:1000::/:/bin/sh\n").unwrap();
        // an image trying to read the host's passwd through a symlink gets its own root's
        std::os::unix::fs::symlink("/etc", up.join("etc")).unwrap();
        let r = Rootfs::Overlay(super::super::spec::OverlayRootfs {
            lowerdirs: vec![low],
            upperdir: up,
            workdir: t.path().join("w"),
        });
        assert_eq!(resolve_user(&r, "app").unwrap().uid, 1000);
    }
}
