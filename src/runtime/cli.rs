//! `berth runtime …`: a runc-compatible command line on bundle directories.
//!
//! `berth runtime [--root DIR] create|start|state|kill|delete|run|exec|ps|list …`, with runc's
//! flags (`--bundle/-b`, `--pid-file`, `--console-socket`, `--detach/-d`, `--force/-f`,
//! `--tty/-t`, `--process/-p`). Hand-parsed: this path must start fast.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::error::{Result, RuntimeError};
use super::manager::{ExecRequest, Runtime, StdioMode};
use super::state::ContainerId;
use super::{foreground, signals};

pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

const USAGE: &str = "usage: berth runtime [--root DIR] COMMAND [OPTIONS] ID
commands:
  create [-b BUNDLE] [--pid-file F] [--console-socket S] ID
  start ID
  run [-b BUNDLE] [--pid-file F] [--console-socket S] [-d] ID
  state ID
  kill [-a] ID [SIGNAL]
  delete [-f] ID
  exec [-t] [--console-socket S] [-p process.json] [--pid-file F] [--cwd D] [-e K=V] [-u UID[:GID]] [-d] ID [CMD...]
  ps [--format table|json] ID
  wait ID            (prints the exit code when the container exits)
  list";

struct Args {
    v: Vec<String>,
    i: usize,
}

impl Args {
    fn next(&mut self) -> Option<String> {
        let a = self.v.get(self.i).cloned();
        self.i += 1;
        a
    }
    fn value(&mut self, flag: &str) -> Result<String> {
        self.next()
            .ok_or_else(|| RuntimeError::BadRequest(format!("{flag} needs a value")))
    }
}

/// Split `--flag=value` into two arguments.
fn normalise(args: &[OsString]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for a in args {
        let s = a
            .to_str()
            .ok_or_else(|| RuntimeError::BadRequest(format!("argument {a:?} is not UTF-8")))?;
        if s.starts_with("--") && s.contains('=') {
            let (k, v) = s.split_once('=').expect("contains =");
            out.push(k.to_string());
            out.push(v.to_string());
        } else {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// Run `berth runtime ARGS…`; returns the process exit code.
pub fn main(args: &[OsString]) -> i32 {
    match dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth runtime: {e}");
            1
        }
    }
}

fn dispatch(args: &[OsString]) -> Result<i32> {
    let mut a = Args {
        v: normalise(args)?,
        i: 0,
    };
    let mut root = PathBuf::from(DEFAULT_ROOT);
    let cmd = loop {
        match a.next().as_deref() {
            Some("--root") => root = PathBuf::from(a.value("--root")?),
            Some("--log") | Some("--log-format") | Some("--criu") => {
                a.value("--log")?;
            }
            Some("--debug") | Some("--systemd-cgroup") => {}
            Some("-h") | Some("--help") | None => {
                println!("{USAGE}");
                return Ok(0);
            }
            Some(c) => break c.to_string(),
        }
    };
    let mut bundle = PathBuf::from(".");
    let mut pid_file = None;
    let mut console_socket = None;
    let mut detach = false;
    let mut force = false;
    let mut all = false;
    let mut tty = false;
    let mut process_file = None;
    let mut cwd = None;
    let mut env = Vec::new();
    let mut user = None;
    let mut format = "table".to_string();
    let mut pos = Vec::new();
    while let Some(x) = a.next() {
        if !pos.is_empty() && cmd == "exec" {
            pos.push(x);
            continue;
        }
        match x.as_str() {
            "-b" | "--bundle" => bundle = PathBuf::from(a.value(&x)?),
            "--pid-file" => pid_file = Some(PathBuf::from(a.value(&x)?)),
            "--console-socket" => console_socket = Some(PathBuf::from(a.value(&x)?)),
            "-d" | "--detach" => detach = true,
            "-f" | "--force" => force = true,
            "-a" | "--all" => all = true,
            "-t" | "--tty" => tty = true,
            "-p" | "--process" => process_file = Some(PathBuf::from(a.value(&x)?)),
            "--cwd" => cwd = Some(a.value(&x)?),
            "-e" | "--env" => env.push(a.value(&x)?),
            "-u" | "--user" => user = Some(a.value(&x)?),
            "--format" | "-f=json" => format = a.value(&x)?,
            "--no-pivot" | "--no-new-keyring" | "--keep" | "--no-subreaper" => {}
            "--preserve-fds" => {
                a.value(&x)?;
            }
            "--" => {}
            s if s.starts_with('-') && s.len() > 1 && !(cmd == "kill" && pos.len() == 1) => {
                return Err(RuntimeError::BadRequest(format!(
                    "unknown option {s}\n{USAGE}"
                )));
            }
            _ => pos.push(x),
        }
    }
    let id =
        || -> Result<ContainerId> {
            ContainerId::new(pos.first().cloned().ok_or_else(|| {
                RuntimeError::BadRequest(format!("missing container id\n{USAGE}"))
            })?)
        };
    let bundle =
        std::path::absolute(&bundle).map_err(|e| RuntimeError::io("resolve", &bundle, e))?;
    match cmd.as_str() {
        "run" if !detach => foreground::run(
            &root,
            &bundle,
            &id()?,
            pid_file.as_deref(),
            console_socket.as_deref(),
        ),
        "run" | "create" => {
            let rt = Runtime::open(&root)?;
            let id = id()?;
            rt.create_bundle(&id, &bundle, console_socket.as_deref())?;
            if let Some(p) = &pid_file {
                write_pid_file(p, rt.state(&id)?.pid)?;
            }
            if cmd == "run" {
                rt.start(&id)?;
            }
            Ok(0)
        }
        "start" => {
            Runtime::open(&root)?.start(&id()?)?;
            Ok(0)
        }
        "state" => {
            let rt = Runtime::open(&root)?;
            let st = rt.oci_state(&id()?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&st).expect("serialisable")
            );
            Ok(0)
        }
        "kill" => {
            let sig = signals::parse(pos.get(1).map(String::as_str).unwrap_or("SIGTERM"))?;
            let rt = Runtime::open(&root)?;
            let id = id()?;
            if all {
                rt.kill_all(&id, sig)?
            } else {
                rt.kill(&id, sig)?
            }
            Ok(0)
        }
        "wait" => {
            let info = Runtime::open(&root)?.wait(&id()?)?;
            println!("{}", info.exit_code);
            Ok(0)
        }
        "delete" => {
            Runtime::open(&root)?.remove(&id()?, force)?;
            Ok(0)
        }
        "list" => {
            let rt = Runtime::open(&root)?;
            println!("{:<24} {:<8} {:<10} BUNDLE", "ID", "PID", "STATUS");
            for st in rt.list()? {
                println!(
                    "{:<24} {:<8} {:<10} {}",
                    st.id,
                    st.pid,
                    st.status,
                    st.bundle.display()
                );
            }
            Ok(0)
        }
        "ps" => {
            let rt = Runtime::open(&root)?;
            let id = id()?;
            if format == "json" {
                let pids: Vec<i32> = rt.top(&id)?.processes.iter().map(|p| p.pid).collect();
                println!("{}", serde_json::to_string(&pids).expect("serialisable"));
            } else {
                let t = rt.top(&id)?;
                println!("{}", t.titles.join("\t"));
                for p in t.processes {
                    println!("{}", p.columns().join("\t"));
                }
            }
            Ok(0)
        }
        "exec" => {
            let rt = Runtime::open(&root)?;
            let id = id()?;
            let mut req = match &process_file {
                Some(p) => {
                    let data = std::fs::read(p).map_err(|e| RuntimeError::io("read", p, e))?;
                    let proc: super::spec::Process =
                        serde_json::from_slice(&data).map_err(|e| RuntimeError::InvalidSpec {
                            path: p.clone(),
                            reason: e.to_string(),
                        })?;
                    ExecRequest::from_process(proc)
                }
                None => {
                    let args: Vec<String> = pos[1..].to_vec();
                    if args.is_empty() {
                        return Err(RuntimeError::BadRequest(
                            "exec needs a command or --process".into(),
                        ));
                    }
                    ExecRequest {
                        args,
                        ..Default::default()
                    }
                }
            };
            req.tty |= tty;
            req.env.extend(env);
            if let Some(c) = cwd {
                req.cwd = Some(c);
            }
            if let Some(u) = user {
                let (uid, gid) = u.split_once(':').unwrap_or((&u, "0"));
                req.uid = Some(
                    uid.parse()
                        .map_err(|_| RuntimeError::BadRequest(format!("bad uid {uid}")))?,
                );
                req.gid = Some(
                    gid.parse()
                        .map_err(|_| RuntimeError::BadRequest(format!("bad gid {gid}")))?,
                );
            }
            let mode = match (&console_socket, req.tty) {
                (Some(s), true) => StdioMode::ConsoleSocket(s.clone()),
                (None, true) => StdioMode::ProxyTerminal,
                _ => StdioMode::Inherit,
            };
            req.pid_file = pid_file.clone();
            let mut ex = rt.exec(&id, &req, mode)?;
            if detach {
                // runc's contract: the pid file exists when `exec -d` returns.
                if let Some(p) = &pid_file {
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                    while !p.exists() {
                        if let Ok(Some(st)) = ex.child.try_wait() {
                            return Err(RuntimeError::Init(format!("exec failed ({st})")));
                        }
                        if std::time::Instant::now() > deadline {
                            return Err(RuntimeError::Init("exec did not start".into()));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                }
                return Ok(0);
            }
            ex.wait()
        }
        other => Err(RuntimeError::BadRequest(format!(
            "unknown command {other:?}\n{USAGE}"
        ))),
    }
}

pub(crate) fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    super::state::write_atomic(p, pid.to_string().as_bytes())
}
