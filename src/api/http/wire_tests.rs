//! The wire, end to end, with the engine's streaming replies faked: the real docker CLI (and a
//! raw HTTP client) against this server's accept loop, version handling, 101 hijack, stdcopy
//! framing, half-close and wait code. The routes below hand out `IoSession`s, log lines and
//! wait results made by the test, through the same helpers the real handlers use — the
//! dispatcher cannot produce these replies until the runtime is wired in. Needs the docker CLI
//! (`/usr/local/bin/docker`, or `DOCKER_CLI`).

use super::docker::exec::{ExecCreateBody, ExecStartBody, exec_config, exec_inspect};
use super::routes::containers::{log_bytes, wait_response};
use super::routes::system::ping;
use super::stream;
use super::version::ApiVersion;
use crate::api::reply::{IoSession, OutputChunk};
use crate::api::{ExecConfig, ExecInfo, LogLine, Stream};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

const EXIT_CODE: i32 = 3;
const T: Duration = Duration::from_secs(20);

#[derive(Clone, Default)]
struct Fake {
    execs: Arc<Mutex<HashMap<String, ExecConfig>>>,
    /// Released by the test to complete a pending wait.
    wait_release: Arc<Mutex<Option<oneshot::Receiver<i32>>>>,
}

fn chunk(stream: Stream, s: &str) -> OutputChunk {
    OutputChunk {
        stream,
        data: Bytes::copy_from_slice(s.as_bytes()),
    }
}

/// A stand-in for a process: with stdin, it upper-cases what it reads and says "bye" on stderr
/// when stdin closes; without, it prints one line on each stream.
fn fake_process(cfg: &ExecConfig) -> IoSession {
    let (out_tx, output) = mpsc::channel(16);
    if cfg.stdin && cfg.tty {
        // A terminal: echoes what is typed, ends at `q`.
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            while let Some(b) = in_rx.recv().await {
                let _ = out_tx
                    .send(OutputChunk {
                        stream: Stream::Stdout,
                        data: b.clone(),
                    })
                    .await;
                if b.contains(&b'q') {
                    let _ = out_tx.send(chunk(Stream::Stdout, "\r\nTTY-DONE\r\n")).await;
                    return;
                }
            }
        });
        return IoSession {
            stdin: Some(in_tx),
            output,
            tty: true,
        };
    }
    if cfg.stdin {
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            while let Some(b) = in_rx.recv().await {
                let up = String::from_utf8_lossy(&b).to_uppercase();
                let _ = out_tx.send(chunk(Stream::Stdout, &up)).await;
            }
            let _ = out_tx.send(chunk(Stream::Stderr, "bye\n")).await;
        });
        IoSession {
            stdin: Some(in_tx),
            output,
            tty: cfg.tty,
        }
    } else {
        tokio::spawn(async move {
            let _ = out_tx.send(chunk(Stream::Stdout, "out\n")).await;
            let _ = out_tx.send(chunk(Stream::Stderr, "err\n")).await;
        });
        IoSession {
            stdin: None,
            output,
            tty: cfg.tty,
        }
    }
}

fn router(fake: Fake) -> Router {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route(
            "/containers/{id}/json",
            get(|Path(id): Path<String>| async move {
                Json(json!({
                    "Id": id, "Name": "/c1",
                    "State": {"Status": "running", "Running": true, "Paused": false, "Restarting": false, "Pid": 1, "ExitCode": 0},
                    "Config": {"Tty": false},
                }))
            }),
        )
        .route(
            "/containers/{id}/exec",
            post(|State(f): State<Fake>, Path(id): Path<String>, body: Bytes| async move {
                let b: ExecCreateBody = serde_json::from_slice(&body).unwrap();
                let cfg = exec_config(&id, b).unwrap();
                f.execs.lock().unwrap().insert("e1".into(), cfg);
                (StatusCode::CREATED, Json(json!({"Id": "e1"})))
            }),
        )
        .route(
            "/exec/{id}/start",
            post(
                |State(f): State<Fake>,
                 Extension(v): Extension<ApiVersion>,
                 Path(id): Path<String>,
                 mut req: Request| async move {
                    let upgrade = stream::wants_upgrade(req.headers());
                    let on = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
                    let body = axum::body::to_bytes(req.into_body(), 1 << 16).await.unwrap();
                    let start: ExecStartBody = serde_json::from_slice(&body).unwrap();
                    assert!(!start.detach);
                    let cfg = f.execs.lock().unwrap().get(&id).cloned().unwrap();
                    stream::session_response(fake_process(&cfg), on, upgrade, v)
                },
            ),
        )
        .route(
            "/exec/{id}/json",
            get(|State(f): State<Fake>, Path(id): Path<String>| async move {
                let cfg = f.execs.lock().unwrap().get(&id).cloned().unwrap();
                Json(exec_inspect(&ExecInfo {
                    id,
                    container: cfg.container,
                    running: false,
                    exit_code: Some(EXIT_CODE),
                    pid: None,
                    tty: cfg.tty,
                    cmd: cfg.cmd,
                }))
            }),
        )
        .route(
            "/exec/{id}/resize",
            post(|| async { StatusCode::OK }),
        )
        .route(
            "/containers/{id}/logs",
            get(|Extension(v): Extension<ApiVersion>| async move {
                let lines = vec![
                    LogLine { stream: Stream::Stdout, time: 1, line: "l1".into() },
                    LogLine { stream: Stream::Stderr, time: 2, line: "l2".into() },
                ];
                stream::streaming(
                    stream::output_content_type(false, v),
                    futures_util::stream::iter(lines.into_iter().map(|l| log_bytes(&l, false, false))),
                )
            }),
        )
        .route(
            "/containers/{id}/wait",
            post(|State(f): State<Fake>| async move {
                let rx = f.wait_release.lock().unwrap().take().unwrap();
                wait_response(async move { rx.await.map_err(|e| e.to_string()) })
            }),
        )
        .with_state(fake)
}

struct Server {
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    _stop: oneshot::Sender<()>,
}

fn start(fake: Fake) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("fake.sock");
    let listener = super::bind(&socket, None).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let path = socket.clone();
    tokio::spawn(async move {
        let _ = super::accept_loop(router(fake), listener, &path, async {
            let _ = stopped.await;
        })
        .await;
    });
    Server {
        _dir: dir,
        socket,
        _stop: stop,
    }
}

fn docker_cli() -> String {
    let cli = std::env::var("DOCKER_CLI").unwrap_or_else(|_| "/usr/local/bin/docker".into());
    assert!(
        std::path::Path::new(&cli).exists(),
        "these tests need the docker CLI at {cli} (set DOCKER_CLI)"
    );
    cli
}

async fn docker(s: &Server, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let cfg = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(docker_cli());
    cmd.args(args)
        .env("DOCKER_HOST", format!("unix://{}", s.socket.display()))
        .env("DOCKER_CONFIG", cfg.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(T, child.wait_with_output())
        .await
        .expect("docker did not finish")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_exec_demuxes_stdout_and_stderr_and_reports_the_exit_code() {
    let s = start(Fake::default());
    let (code, out, err) = docker(&s, &["exec", "c1", "sh"], None).await;
    assert_eq!(out, "out\n", "stderr: {err}");
    assert!(err.contains("err\n"), "{err}");
    assert_eq!(code, EXIT_CODE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_exec_i_sends_stdin_and_its_half_close_ends_the_process() {
    let s = start(Fake::default());
    let (code, out, err) = docker(&s, &["exec", "-i", "c1", "cat"], Some("hello\n")).await;
    assert_eq!(out, "HELLO\n", "stderr: {err}");
    // "bye" comes only after stdin closed: the CLI's half-close reached the process, and its
    // output after that still reached the CLI.
    assert!(err.contains("bye\n"), "{err}");
    assert_eq!(code, EXIT_CODE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_logs_demuxes_the_frames() {
    let s = start(Fake::default());
    let (code, out, err) = docker(&s, &["logs", "c1"], None).await;
    assert_eq!((code, out.as_str()), (0, "l1\n"), "stderr: {err}");
    assert_eq!(err, "l2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_exec_it_under_a_terminal_is_raw_both_ways() {
    let s = start(Fake::default());
    let cfg = tempfile::tempdir().unwrap();
    // `script` gives the CLI a terminal; what we type goes through the hijacked connection.
    let mut child = tokio::process::Command::new("script")
        .args([
            "-qefc",
            &format!("{} exec -it c1 sh", docker_cli()),
            "/dev/null",
        ])
        .env("DOCKER_HOST", format!("unix://{}", s.socket.display()))
        .env("DOCKER_CONFIG", cfg.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) must be installed");
    let mut input = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    input.write_all(b"hello").await.unwrap();
    // Typed bytes come back as the fake terminal's echo (no frame headers on a TTY).
    while !String::from_utf8_lossy(&seen).contains("hello") {
        let n = tokio::time::timeout(T, output.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "ended early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    input.write_all(b"q").await.unwrap();
    let status = tokio::time::timeout(T, child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    let _ = output.read_to_end(&mut rest).await;
    seen.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("TTY-DONE"), "{text:?}");
    assert!(!text.contains('\u{1}'), "frame headers on a TTY: {text:?}");
    assert_eq!(status.code(), Some(EXIT_CODE), "{text:?}");
}

/// Send a raw request; return the response head and whatever body bytes came with it.
async fn raw(s: &Server, request: &str) -> (tokio::net::UnixStream, String, Vec<u8>) {
    let mut c = tokio::net::UnixStream::connect(&s.socket).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(T, c.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed before the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&byte[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i + 4]).into_owned();
            return (c, head, buf[i + 4..].to_vec());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hijack_answers_101_upgraded_then_carries_frames() {
    let fake = Fake::default();
    fake.execs.lock().unwrap().insert(
        "e1".into(),
        ExecConfig {
            container: "c1".into(),
            cmd: vec!["sh".into()],
            ..Default::default()
        },
    );
    let s = start(fake);
    let body = r#"{"Detach":false,"Tty":false}"#;
    let (mut c, head, mut rest) = raw(
        &s,
        &format!(
            "POST /v1.44/exec/e1/start HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101 UPGRADED\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(lower.contains("\r\nupgrade: tcp\r\n"), "{head}");
    assert!(
        lower.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    tokio::time::timeout(T, c.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let mut expect = stream::frame(stream::FrameKind::Stdout, b"out\n").to_vec();
    expect.extend_from_slice(&stream::frame(stream::FrameKind::Stderr, b"err\n"));
    assert_eq!(rest, expect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_sends_its_headers_before_the_condition_holds() {
    let fake = Fake::default();
    let (release, rx) = oneshot::channel();
    *fake.wait_release.lock().unwrap() = Some(rx);
    let s = start(fake);
    let (mut c, head, rest) = raw(
        &s,
        "POST /v1.44/containers/c1/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    // The head arrived while the wait is still pending (release has not been sent).
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert!(rest.is_empty(), "body before the condition held: {rest:?}");
    release.send(7).unwrap();
    let mut body = rest;
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&body).contains("\r\n0\r\n\r\n") {
        let n = tokio::time::timeout(T, c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&body));
        body.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&body);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {text:?}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v, json!({"StatusCode": 7, "Error": null}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_out_of_range_are_400_and_the_prefix_is_optional() {
    let s = start(Fake::default());
    for (path, want) in [
        ("/v1.51/_ping", "400 Bad Request"),
        ("/v1.23/_ping", "400 Bad Request"),
        ("/v1.24/_ping", "200 OK"),
        ("/_ping", "200 OK"),
    ] {
        let (_c, head, _) = raw(&s, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {want}\r\n")),
            "{path}: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\napi-version: 1.44\r\n"),
            "{head}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unframed_stream_for_clients_that_do_not_upgrade() {
    let fake = Fake::default();
    fake.execs.lock().unwrap().insert(
        "e1".into(),
        ExecConfig {
            container: "c1".into(),
            cmd: vec!["sh".into()],
            tty: true,
            ..Default::default()
        },
    );
    let s = start(fake);
    let body = r#"{"Detach":false,"Tty":true,"ConsoleSize":[40,120]}"#;
    let (mut c, head, mut rest) = raw(
        &s,
        &format!(
            "POST /exec/e1/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("application/vnd.docker.raw-stream"), "{head}");
    tokio::time::timeout(T, c.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&rest);
    // TTY output is raw: no frame headers, stdout and stderr as one stream.
    assert!(
        text.contains("out\n") && text.contains("err\n") && !text.contains('\u{1}'),
        "{text:?}"
    );
}

/// A stand-in for one container: its output channel exists from create on (so attach before
/// start loses nothing); start "runs" it (echo, or exit with a code); wait ends at its exit.
#[derive(Clone, Default)]
struct FakeRun {
    cmd: Arc<Mutex<Vec<String>>>,
    out_tx: Arc<Mutex<Option<mpsc::Sender<OutputChunk>>>>,
    out_rx: Arc<Mutex<Option<mpsc::Receiver<OutputChunk>>>>,
    exit: Arc<Mutex<Option<oneshot::Sender<i32>>>>,
    exited: Arc<Mutex<Option<oneshot::Receiver<i32>>>>,
    order: Arc<Mutex<Vec<&'static str>>>,
}

const FAKE_ID: &str = "f00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dface";

fn run_router(f: FakeRun) -> Router {
    use super::docker::container::{CreateBody, config_from_create};
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route(
            "/containers/create",
            post(|State(f): State<FakeRun>, body: Bytes| async move {
                let b: CreateBody = serde_json::from_slice(&body).unwrap();
                let (cfg, warnings) = config_from_create(b, None, None).unwrap();
                *f.cmd.lock().unwrap() = cfg.cmd;
                let (tx, rx) = mpsc::channel(16);
                *f.out_tx.lock().unwrap() = Some(tx);
                *f.out_rx.lock().unwrap() = Some(rx);
                let (etx, erx) = oneshot::channel();
                *f.exit.lock().unwrap() = Some(etx);
                *f.exited.lock().unwrap() = Some(erx);
                f.order.lock().unwrap().push("create");
                (
                    StatusCode::CREATED,
                    Json(json!({"Id": FAKE_ID, "Warnings": warnings})),
                )
            }),
        )
        .route(
            "/containers/{id}/attach",
            post(
                |State(f): State<FakeRun>,
                 Extension(v): Extension<ApiVersion>,
                 mut req: Request| async move {
                    f.order.lock().unwrap().push("attach");
                    let upgrade = stream::wants_upgrade(req.headers());
                    let on = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
                    let output = f.out_rx.lock().unwrap().take().unwrap();
                    let session = IoSession {
                        stdin: None,
                        output,
                        tty: false,
                    };
                    stream::session_response(session, on, upgrade, v)
                },
            ),
        )
        .route(
            "/containers/{id}/wait",
            post(|State(f): State<FakeRun>| async move {
                f.order.lock().unwrap().push("wait");
                let rx = f.exited.lock().unwrap().take().unwrap();
                wait_response(async move { rx.await.map_err(|e| e.to_string()) })
            }),
        )
        .route(
            "/containers/{id}/start",
            post(|State(f): State<FakeRun>| async move {
                f.order.lock().unwrap().push("start");
                let cmd = f.cmd.lock().unwrap().clone();
                let tx = f.out_tx.lock().unwrap().take().unwrap();
                let exit = f.exit.lock().unwrap().take().unwrap();
                tokio::spawn(async move {
                    let code = match cmd.first().map(String::as_str) {
                        Some("echo") => {
                            let line = format!("{}\n", cmd[1..].join(" "));
                            let _ = tx.send(chunk(Stream::Stdout, &line)).await;
                            0
                        }
                        Some("exit") => cmd[1].parse().unwrap(),
                        _ => 127,
                    };
                    drop(tx); // the process is gone and its output drained …
                    let _ = exit.send(code); // … then the wait completes
                });
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(f)
}

fn start_run(f: FakeRun) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run.sock");
    let listener = super::bind(&socket, None).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let path = socket.clone();
    tokio::spawn(async move {
        let _ = super::accept_loop(run_router(f), listener, &path, async {
            let _ = stopped.await;
        })
        .await;
    });
    Server {
        _dir: dir,
        socket,
        _stop: stop,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clis_run_choreography_attach_wait_start_prints_hi() {
    let f = FakeRun::default();
    let s = start_run(f.clone());
    let (code, out, err) = docker(&s, &["run", "--rm", "fake", "echo", "hi"], None).await;
    assert_eq!((code, out.as_str()), (0, "hi\n"), "stderr: {err}");
    // The CLI attached and registered its wait before it started the container.
    let order = f.order.lock().unwrap().clone();
    assert_eq!(order[0], "create");
    assert_eq!(order[3], "start", "{order:?}");
    assert!(
        order[1..3].contains(&"attach") && order[1..3].contains(&"wait"),
        "{order:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clis_run_returns_the_exit_code_and_run_d_prints_the_id() {
    let s = start_run(FakeRun::default());
    let (code, _, err) = docker(&s, &["run", "fake", "exit", "5"], None).await;
    assert_eq!(code, 5, "stderr: {err}");
    let s = start_run(FakeRun::default());
    let (code, out, err) = docker(&s, &["run", "-d", "fake", "echo", "x"], None).await;
    assert_eq!((code, out.trim()), (0, FAKE_ID), "stderr: {err}");
}
