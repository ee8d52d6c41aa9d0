//! Docker/OCI-format seccomp profiles → [`Profile`].

use super::{
    Action, Applicability, ArgCondition, ArgOp, ArgWidth, Profile, SeccompError, SyscallGroup,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<DockerGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerGroup {
    #[serde(default)]
    names: Vec<String>,
    /// Profiles before Docker 1.13 name one syscall per entry.
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<DockerArg>>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    includes: Option<DockerFilter>,
    #[serde(default)]
    excludes: Option<DockerFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerFilter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

fn action(name: &str, errno: Option<u32>, origin: &str) -> Result<Action, SeccompError> {
    let unsupported = |m: String| SeccompError::Unsupported {
        origin: origin.to_owned(),
        message: m,
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        // runc's default errno when none is given is EPERM.
        "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(libc::EPERM as u32)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_TRACE" => Action::Trace(errno.unwrap_or(libc::EPERM as u32)),
        "SCMP_ACT_NOTIFY" => {
            return Err(unsupported(
                "SCMP_ACT_NOTIFY needs a seccomp agent, which berth does not have".into(),
            ));
        }
        other => return Err(unsupported(format!("unknown action {other:?}"))),
    })
}

fn arg(a: &DockerArg, origin: &str) -> Result<ArgCondition, SeccompError> {
    let op = match a.op.as_str() {
        "SCMP_CMP_EQ" => ArgOp::Eq,
        "SCMP_CMP_NE" => ArgOp::Ne,
        "SCMP_CMP_LT" => ArgOp::Lt,
        "SCMP_CMP_LE" => ArgOp::Le,
        "SCMP_CMP_GT" => ArgOp::Gt,
        "SCMP_CMP_GE" => ArgOp::Ge,
        "SCMP_CMP_MASKED_EQ" => ArgOp::MaskedEq,
        other => {
            return Err(SeccompError::Unsupported {
                origin: origin.to_owned(),
                message: format!("unknown argument operator {other:?}"),
            });
        }
    };
    // libseccomp's masked_eq takes the mask in `value` and the expected value in `valueTwo`.
    let (value, mask) = match op {
        ArgOp::MaskedEq => (a.value_two, Some(a.value)),
        _ => (a.value, None),
    };
    Ok(ArgCondition {
        index: a.index,
        width: ArgWidth::Qword,
        op,
        value,
        mask,
    })
}

fn filter(f: Option<DockerFilter>) -> Applicability {
    let f = f.unwrap_or_default();
    Applicability {
        caps: f.caps.unwrap_or_default(),
        arches: f.arches.unwrap_or_default(),
        min_kernel: f.min_kernel,
    }
}

pub(super) fn convert(json: &str, origin: &str) -> Result<Profile, SeccompError> {
    let p: DockerProfile = serde_json::from_str(json).map_err(|source| SeccompError::Json {
        origin: origin.to_owned(),
        source,
    })?;
    let default_action = action(&p.default_action, p.default_errno_ret, origin)?;
    let mut syscalls = Vec::with_capacity(p.syscalls.len());
    for g in p.syscalls {
        let mut names = g.names;
        names.extend(g.name);
        syscalls.push(SyscallGroup {
            action: action(&g.action, g.errno_ret, origin)?,
            args: g
                .args
                .unwrap_or_default()
                .iter()
                .map(|a| arg(a, origin))
                .collect::<Result<_, _>>()?,
            includes: filter(g.includes),
            excludes: filter(g.excludes),
            reason: g.comment.unwrap_or_else(|| format!("from {origin}")),
            names,
        });
    }
    Ok(Profile {
        comment: vec![format!("converted from the Docker-format profile {origin}")],
        default_action,
        syscalls,
    })
}

fn action_json(a: Action) -> serde_json::Value {
    use serde_json::json;
    let (name, errno) = match a {
        Action::Allow => ("SCMP_ACT_ALLOW", None),
        Action::Errno(e) => ("SCMP_ACT_ERRNO", Some(e)),
        Action::KillThread => ("SCMP_ACT_KILL_THREAD", None),
        Action::KillProcess => ("SCMP_ACT_KILL_PROCESS", None),
        Action::Trap => ("SCMP_ACT_TRAP", None),
        Action::Log => ("SCMP_ACT_LOG", None),
        Action::Trace(t) => ("SCMP_ACT_TRACE", Some(t)),
    };
    json!({ "action": name, "errno": errno })
}

fn filter_json(a: &Applicability) -> Option<serde_json::Value> {
    use serde_json::json;
    if a.caps.is_empty() && a.arches.is_empty() && a.min_kernel.is_none() {
        return None;
    }
    // Docker names architectures the Go way.
    let arches: Vec<&str> = a
        .arches
        .iter()
        .map(|x| match x.as_str() {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        })
        .collect();
    let mut v = json!({ "caps": a.caps, "arches": arches });
    if let Some(k) = &a.min_kernel {
        v["minKernel"] = json!(k);
    }
    Some(v)
}

pub(super) fn export(p: &Profile) -> serde_json::Value {
    use serde_json::json;
    let default = action_json(p.default_action);
    let mut out = json!({ "defaultAction": default["action"] });
    if let Some(e) = default["errno"].as_u64() {
        out["defaultErrnoRet"] = json!(e);
    }
    let groups: Vec<serde_json::Value> = p
        .syscalls
        .iter()
        .map(|g| {
            let a = action_json(g.action);
            let mut v = json!({ "names": g.names, "action": a["action"], "comment": g.reason });
            if let Some(e) = a["errno"].as_u64() {
                v["errnoRet"] = json!(e);
            }
            if !g.args.is_empty() {
                let args: Vec<serde_json::Value> = g
                    .args
                    .iter()
                    .map(|c| {
                        let op = match c.op {
                            ArgOp::Eq => "SCMP_CMP_EQ",
                            ArgOp::Ne => "SCMP_CMP_NE",
                            ArgOp::Lt => "SCMP_CMP_LT",
                            ArgOp::Le => "SCMP_CMP_LE",
                            ArgOp::Gt => "SCMP_CMP_GT",
                            ArgOp::Ge => "SCMP_CMP_GE",
                            ArgOp::MaskedEq => "SCMP_CMP_MASKED_EQ",
                        };
                        match c.mask {
                            Some(m) => {
                                json!({"index": c.index, "value": m, "valueTwo": c.value, "op": op})
                            }
                            None => {
                                json!({"index": c.index, "value": c.value, "valueTwo": 0, "op": op})
                            }
                        }
                    })
                    .collect();
                v["args"] = json!(args);
            }
            if let Some(f) = filter_json(&g.includes) {
                v["includes"] = f;
            }
            if let Some(f) = filter_json(&g.excludes) {
                v["excludes"] = f;
            }
            v
        })
        .collect();
    out["syscalls"] = json!(groups);
    out
}
