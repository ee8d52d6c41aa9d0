//! USER and `--chown` specs against an image's passwd and group files.

/// `uid[:gid]` or `name[:group]`, resolved against passwd and group file contents.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<(u32, u32, Vec<u32>), String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let rows = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split(':').map(str::to_owned).collect())
            .collect()
    };
    let pw = rows(passwd);
    let gr = rows(group);
    let (uid, mut gid, name) = match user.parse::<u32>() {
        Ok(uid) => {
            let row = pw.iter().find(|f| f.len() > 3 && f[2] == user);
            (
                uid,
                row.and_then(|f| f[3].parse().ok()).unwrap_or(uid),
                row.map(|f| f[0].clone()),
            )
        }
        Err(_) => pw
            .iter()
            .find(|f| f.len() > 3 && f[0] == user)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?, Some(f[0].clone()))))
            .ok_or_else(|| {
                format!("unable to find user {user}: no matching entries in passwd file")
            })?,
    };
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(g) => g,
            Err(_) => gr
                .iter()
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    let extra = match (&name, grp) {
        (Some(n), None) => gr
            .iter()
            .filter(|f| f.len() > 3 && f[3].split(',').any(|m| m == n))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect(),
        _ => Vec::new(),
    };
    Ok((uid, gid, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_by_name_and_number() {
        let passwd = "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n";
        let group = "root:x:0:\nwww:x:33:\nextra:x:50:www\n";
        assert_eq!(
            resolve_user("www", passwd, group).unwrap(),
            (33, 33, vec![50])
        );
        assert_eq!(
            resolve_user("1000", passwd, group).unwrap(),
            (1000, 1000, vec![])
        );
        assert_eq!(
            resolve_user("www:root", passwd, group).unwrap(),
            (33, 0, vec![])
        );
        assert!(resolve_user("nobody", passwd, group).is_err());
    }
}
