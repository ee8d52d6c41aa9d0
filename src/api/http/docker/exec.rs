//! Exec: the create and start bodies, and `GET /exec/{id}/json`.

use super::container::StrOrList;
use crate::api::{ContainerId, ExecConfig, ExecInfo};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /containers/{id}/exec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExecCreateBody {
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub env: Option<Vec<String>>,
    pub working_dir: String,
    pub cmd: Option<StrOrList>,
}

pub(crate) fn exec_config(container: &str, b: ExecCreateBody) -> Result<ExecConfig, String> {
    let cmd = match b.cmd {
        Some(StrOrList::Many(v)) => v,
        Some(StrOrList::One(s)) => s.split_whitespace().map(str::to_owned).collect(),
        None => Vec::new(),
    };
    if cmd.is_empty() {
        return Err("no exec command specified".into());
    }
    Ok(ExecConfig {
        container: ContainerId::from(container),
        cmd,
        env: b.env.unwrap_or_default(),
        user: Some(b.user).filter(|u| !u.is_empty()),
        workdir: Some(b.working_dir).filter(|w| !w.is_empty()),
        tty: b.tty,
        stdin: b.attach_stdin,
        privileged: b.privileged,
    })
}

/// `POST /exec/{id}/start`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExecStartBody {
    pub detach: bool,
    pub tty: bool,
    /// `[height, width]`.
    pub console_size: Option<Vec<u16>>,
}

impl ExecStartBody {
    pub fn console_size(&self) -> Option<(u16, u16)> {
        match self.console_size.as_deref() {
            Some([h, w]) if *h > 0 && *w > 0 => Some((*h, *w)),
            _ => None,
        }
    }
}

pub(crate) fn exec_inspect(e: &ExecInfo) -> Value {
    let (entry, args) = e
        .cmd
        .split_first()
        .map_or((String::new(), Vec::new()), |(a, b)| {
            (a.clone(), b.to_vec())
        });
    json!({
        "ID": e.id,
        "ContainerID": e.container,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "Pid": e.pid.unwrap_or(0),
        "OpenStdin": false,
        "OpenStdout": true,
        "OpenStderr": true,
        "CanRemove": !e.running && e.exit_code.is_some(),
        "DetachKeys": "",
        "ProcessConfig": {
            "tty": e.tty,
            "entrypoint": entry,
            "arguments": args,
            "privileged": false,
            "user": "",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clis_exec_bodies_map() {
        let b: ExecCreateBody = serde_json::from_str(
            r#"{"User":"","Privileged":false,"Tty":true,"ConsoleSize":[40,120],"AttachStdin":true,
                "AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,
                "WorkingDir":"","Cmd":["sh"]}"#,
        )
        .unwrap();
        let c = exec_config("web", b).unwrap();
        assert_eq!(c.container.0, "web");
        assert_eq!(c.cmd, ["sh"]);
        assert!(c.tty && c.stdin && !c.privileged);
        assert_eq!((c.user, c.workdir), (None, None));
        assert!(exec_config("web", ExecCreateBody::default()).is_err());

        let s: ExecStartBody =
            serde_json::from_str(r#"{"Detach":false,"Tty":true,"ConsoleSize":[40,120]}"#).unwrap();
        assert_eq!(s.console_size(), Some((40, 120)));
        assert!(!s.detach);
        let s: ExecStartBody = serde_json::from_str(r#"{"Detach":true}"#).unwrap();
        assert_eq!(s.console_size(), None);
    }

    #[test]
    fn exec_inspect_reports_running_and_exit_code() {
        let info = ExecInfo {
            id: "e1".into(),
            container: "c1".into(),
            running: false,
            exit_code: Some(7),
            pid: Some(9),
            tty: true,
            cmd: vec!["sh".into(), "-c".into(), "exit 7".into()],
        };
        let j = exec_inspect(&info);
        assert_eq!(j["ExitCode"], 7);
        assert_eq!(j["Running"], false);
        assert_eq!(j["ContainerID"], "c1");
        assert_eq!(j["ProcessConfig"]["entrypoint"], "sh");
        assert_eq!(j["ProcessConfig"]["arguments"], json!(["-c", "exit 7"]));
        let running = ExecInfo {
            running: true,
            exit_code: None,
            ..info
        };
        assert_eq!(exec_inspect(&running)["ExitCode"], Value::Null);
    }
}
