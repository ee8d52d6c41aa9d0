//! The client of a remote engine (`berth serve`) over its unix socket, in berth's own protocol
//! (`super::wire`): every command, every reply, the event stream.

use super::command::Command;
use super::error::ApiError;
use super::event::EventRecord;
use super::reply::{IoSession, OutputChunk, Reply};
use super::types::{LogLine, StatsSample, Stream};
use super::wire::{
    COMMAND_PATH, EVENTS_PATH, REPLY_HEADER, TTY_HEADER, WireCommand, WireError, WireReply,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};

/// Where a remote engine listens.
#[derive(Debug, Clone)]
pub struct Remote {
    socket: PathBuf,
}

fn conn_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::engine("talking to the remote engine", e)
}

impl Remote {
    /// `unix:///path` or a plain path.
    pub fn parse(host: &str) -> Result<Self, ApiError> {
        let path = host.strip_prefix("unix://").unwrap_or(host);
        if path.is_empty() || host.contains("://") && !host.starts_with("unix://") {
            return Err(ApiError::InvalidArgument(format!(
                "--host {host:?}: only unix:///path is supported"
            )));
        }
        Ok(Self {
            socket: PathBuf::from(path),
        })
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, ApiError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| ApiError::engine(format!("connecting to {}", self.socket.display()), e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(conn_err)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender.send_request(req).await.map_err(conn_err)
    }

    /// Run one command on the remote engine (as the connecting user; `confirmed` answers a
    /// `confirm` rule).
    pub async fn submit(&self, command: Command, confirmed: bool) -> Result<Reply, ApiError> {
        let body = serde_json::to_vec(&WireCommand { command, confirmed }).map_err(conn_err)?;
        let req = Request::post(COMMAND_PATH)
            .header(HOST, "berth")
            .header(CONTENT_TYPE, "application/json")
            // Only a stdio session is upgraded; other answers come back as usual.
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, "tcp")
            .body(Full::new(Bytes::from(body)))
            .map_err(conn_err)?;
        let mut resp = self.send(req).await?;
        let status = resp.status();
        if !status.is_success() && status != hyper::StatusCode::SWITCHING_PROTOCOLS {
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(conn_err)?
                .to_bytes();
            return Err(match serde_json::from_slice::<WireError>(&body) {
                Ok(w) => w.into(),
                Err(_) => ApiError::engine(
                    format!("the remote engine answered {status}"),
                    String::from_utf8_lossy(&body),
                ),
            });
        }
        let kind = resp
            .headers()
            .get(REPLY_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        match kind.as_str() {
            "value" => {
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(conn_err)?
                    .to_bytes();
                let w: WireReply = serde_json::from_slice(&body).map_err(conn_err)?;
                Ok(w.into_reply())
            }
            "logs" => Ok(Reply::Logs(json_lines::<LogLine>(resp.into_body()))),
            "stats" => Ok(Reply::Stats(json_lines::<StatsSample>(resp.into_body()))),
            "io" => {
                let tty = resp.headers().get(TTY_HEADER).is_some_and(|v| v == "1");
                let upgraded = hyper::upgrade::on(&mut resp).await.map_err(conn_err)?;
                Ok(Reply::Io(io_session(TokioIo::new(upgraded), tty)))
            }
            other => Err(conn_err(format!("unknown reply kind {other:?}"))),
        }
    }

    /// Every event of the remote engine from now on.
    pub fn subscribe(&self) -> std::io::Result<broadcast::Receiver<EventRecord>> {
        let (tx, rx) = broadcast::channel(4096);
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(req) = Request::get(EVENTS_PATH)
                .header(HOST, "berth")
                .body(Full::new(Bytes::new()))
            else {
                return;
            };
            let Ok(resp) = this.send(req).await else {
                return;
            };
            if !resp.status().is_success() {
                return;
            }
            let mut lines = json_lines::<EventRecord>(resp.into_body());
            while let Some(rec) = lines.recv().await {
                if tx.send(rec).is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

/// Decode a body of JSON lines into a channel; it closes when the body ends.
fn json_lines<T: serde::de::DeserializeOwned + Send + 'static>(
    mut body: Incoming,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                if let Ok(v) = serde_json::from_slice::<T>(&line[..line.len() - 1])
                    && tx.send(v).await.is_err()
                {
                    return;
                }
            }
        }
    });
    rx
}

/// A stdio session over an upgraded connection: output raw (TTY) or in Docker's 8-byte
/// frames; stdin written back; dropping the stdin sender half-closes the connection.
fn io_session<S>(io: S, tty: bool) -> IoSession
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::channel(256);
    tokio::spawn(async move {
        if tty {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0
                    || out_tx
                        .send(OutputChunk {
                            stream: Stream::Stdout,
                            data: Bytes::copy_from_slice(&buf[..n]),
                        })
                        .await
                        .is_err()
                {
                    return;
                }
            }
            return;
        }
        let mut header = [0u8; 8];
        while rd.read_exact(&mut header).await.is_ok() {
            let (stream, len) = crate::api::reply::frame_header(&header);
            let mut data = vec![0u8; len];
            if rd.read_exact(&mut data).await.is_err() {
                return;
            }
            if out_tx
                .send(OutputChunk {
                    stream,
                    data: Bytes::from(data),
                })
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(b) = in_rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    IoSession {
        stdin: Some(in_tx),
        output: out_rx,
        tty,
    }
}
