//! Streaming answers: stdcopy frames, JSON-lines bodies, and the hijacked connection of
//! attach and exec start.

use super::version::ApiVersion;
use crate::api::Stream as OutStream;
use crate::api::reply::{IoSession, OutputChunk};
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Content types of a process's output.
pub(crate) const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub(crate) const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// The stream byte of a stdcopy frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FrameKind {
    Stdout = 1,
    Stderr = 2,
}

impl From<OutStream> for FrameKind {
    fn from(s: OutStream) -> Self {
        match s {
            OutStream::Stdout => Self::Stdout,
            OutStream::Stderr => Self::Stderr,
        }
    }
}

/// One stdcopy frame: `[kind, 0, 0, 0, len (u32 big-endian)]` then the payload. Payloads longer
/// than a frame can hold are split.
pub(crate) fn frame(kind: FrameKind, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    for part in data.chunks(u32::MAX as usize) {
        out.put_u8(kind as u8);
        out.put_bytes(0, 3);
        out.put_u32(part.len() as u32);
        out.put_slice(part);
    }
    out.freeze()
}

/// The bytes of an output chunk on the wire: framed unless the process has a TTY.
pub(crate) fn encode_chunk(chunk: &OutputChunk, tty: bool) -> Bytes {
    if tty {
        chunk.data.clone()
    } else {
        frame(chunk.stream.into(), &chunk.data)
    }
}

/// The content type Docker announces for a process's output at API version `v`.
pub(crate) fn output_content_type(tty: bool, v: ApiVersion) -> &'static str {
    if !tty && v >= ApiVersion(1, 42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

/// A 200 answer whose body is a stream of chunks, one flush each (hyper flushes whenever the
/// body has nothing more ready).
pub(crate) fn streaming(
    content_type: &'static str,
    chunks: impl Stream<Item = Bytes> + Send + 'static,
) -> Response {
    let body = Body::from_stream(futures_util::StreamExt::map(
        chunks,
        Ok::<_, std::io::Error>,
    ));
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON-lines body (pull progress, events, stats, build output).
pub(crate) fn json_lines(
    values: impl Stream<Item = serde_json::Value> + Send + 'static,
) -> Response {
    streaming(
        "application/json",
        futures_util::StreamExt::map(values, |v| {
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        }),
    )
}

/// A stream of what an mpsc receiver yields, until its sender is gone.
pub(crate) fn from_receiver<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

/// Whether a request asks to take over the connection (`Connection: Upgrade`, `Upgrade: tcp`).
pub(crate) fn wants_upgrade(headers: &axum::http::HeaderMap) -> bool {
    let has = |name: header::HeaderName, word: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(word)))
        })
    };
    has(header::CONNECTION, "upgrade") && headers.contains_key(header::UPGRADE)
}

/// The `HTTP/1.1 101 UPGRADED` head that hands the connection over to a stdio session. Real
/// dockerd writes this reason phrase; the CLI itself only checks the code.
pub(crate) fn upgraded_response(content_type: &'static str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
    r
}

/// The answer that carries a stdio session: `101 UPGRADED` and the session over the taken-over
/// connection when the client asked to upgrade, else (old clients) a 200 whose body is the
/// output.
pub(crate) fn session_response(
    session: IoSession,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    upgrade: bool,
    version: ApiVersion,
) -> Response {
    let content_type = output_content_type(session.tty, version);
    match on_upgrade {
        Some(on) if upgrade => {
            spawn_hijack(on, session);
            upgraded_response(content_type)
        }
        _ => {
            let tty = session.tty;
            streaming(
                content_type,
                futures_util::StreamExt::map(from_receiver(session.output), move |c| {
                    encode_chunk(&c, tty)
                }),
            )
        }
    }
}

/// Keep only the streams a client attached to (`stdout=`, `stderr=` of attach). A TTY's output
/// is all stdout.
pub(crate) fn only_streams(session: IoSession, stdout: bool, stderr: bool) -> IoSession {
    if stdout && stderr {
        return session;
    }
    let IoSession {
        stdin,
        mut output,
        tty,
    } = session;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(c) = output.recv().await {
            let keep = match c.stream {
                OutStream::Stdout => stdout,
                OutStream::Stderr => stderr,
            };
            if keep && tx.send(c).await.is_err() {
                return;
            }
        }
    });
    IoSession {
        stdin,
        output: rx,
        tty,
    }
}

/// Once the 101 is out, run the session over the taken-over connection.
pub(crate) fn spawn_hijack(on_upgrade: hyper::upgrade::OnUpgrade, session: IoSession) {
    tokio::spawn(async move {
        // An error here means the client went away before the upgrade finished; dropping the
        // session tells the engine nobody listens any more.
        if let Ok(upgraded) = on_upgrade.await {
            pump(hyper_util::rt::TokioIo::new(upgraded), session).await;
        }
    });
}

/// Carry a stdio session over a connection: the client's bytes to the process's stdin (its
/// half-close closes stdin), the process's output back (framed unless TTY). Ends, closing the
/// connection, when the output ends (the process exited and its output is drained) or the
/// client is gone.
pub(crate) async fn pump<S>(io: S, session: IoSession)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let IoSession {
        stdin,
        mut output,
        tty,
    } = session;
    let (mut rd, mut wr) = tokio::io::split(io);
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                // Half-close (stdin ended) or a dropped connection: close the process's stdin
                // (the sender goes with this task) but keep sending output.
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Some(tx) = &stdin
                        && tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    while let Some(chunk) = output.recv().await {
        let bytes = encode_chunk(&chunk, tty);
        if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
    input.abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn chunk(stream: OutStream, s: &str) -> OutputChunk {
        OutputChunk {
            stream,
            data: Bytes::copy_from_slice(s.as_bytes()),
        }
    }

    /// Split a stdcopy byte stream back into (kind, payload) frames, as the CLI does.
    fn deframe(mut b: &[u8]) -> Vec<(u8, String)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            assert!(b.len() >= 8, "truncated header");
            assert_eq!(&b[1..4], &[0, 0, 0]);
            let len = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
            out.push((b[0], String::from_utf8(b[8..8 + len].to_vec()).unwrap()));
            b = &b[8 + len..];
        }
        out
    }

    #[test]
    fn frame_header_is_kind_three_zeros_and_big_endian_length() {
        let f = frame(FrameKind::Stderr, b"oops\n");
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&f[8..], b"oops\n");
        let big = vec![b'x'; 70_000];
        let f = frame(FrameKind::Stdout, &big);
        assert_eq!(&f[4..8], &70_000u32.to_be_bytes());
        // Nothing to say, no frame (an empty frame would be noise on the wire).
        assert!(frame(FrameKind::Stdout, b"").is_empty());
    }

    #[test]
    fn tty_output_is_raw_and_other_output_framed() {
        let c = chunk(OutStream::Stderr, "e");
        assert_eq!(&encode_chunk(&c, true)[..], b"e");
        assert_eq!(deframe(&encode_chunk(&c, false)), vec![(2, "e".into())]);
        assert_eq!(
            output_content_type(false, ApiVersion(1, 44)),
            MULTIPLEXED_STREAM
        );
        assert_eq!(output_content_type(false, ApiVersion(1, 41)), RAW_STREAM);
        assert_eq!(output_content_type(true, ApiVersion(1, 44)), RAW_STREAM);
    }

    #[test]
    fn upgrade_is_recognised_from_the_clis_headers() {
        let mut h = axum::http::HeaderMap::new();
        assert!(!wants_upgrade(&h));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        assert!(!wants_upgrade(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
        assert!(wants_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, upgrade"),
        );
        assert!(wants_upgrade(&h));
    }

    #[test]
    fn the_upgrade_answer_is_101_upgraded_with_the_headers_clients_read() {
        let r = upgraded_response(RAW_STREAM);
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            r.extensions()
                .get::<hyper::ext::ReasonPhrase>()
                .unwrap()
                .as_bytes(),
            b"UPGRADED"
        );
        assert_eq!(r.headers()[header::CONNECTION], "Upgrade");
        assert_eq!(r.headers()[header::UPGRADE], "tcp");
        assert_eq!(r.headers()[header::CONTENT_TYPE], RAW_STREAM);
    }

    #[tokio::test]
    async fn pump_frames_output_forwards_stdin_and_closes_stdin_on_half_close() {
        let (client, server) = tokio::io::duplex(1024);
        let (out_tx, out_rx) = mpsc::channel(8);
        let (in_tx, mut in_rx) = mpsc::channel(8);
        let session = IoSession {
            stdin: Some(in_tx),
            output: out_rx,
            tty: false,
        };
        let task = tokio::spawn(pump(server, session));
        let (mut crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(b"echo hi\n").await.unwrap();
        assert_eq!(&in_rx.recv().await.unwrap()[..], b"echo hi\n");
        // The client half-closes: stdin must close, output must keep flowing.
        cwr.shutdown().await.unwrap();
        assert_eq!(in_rx.recv().await, None, "stdin was not closed");
        out_tx.send(chunk(OutStream::Stdout, "hi\n")).await.unwrap();
        out_tx
            .send(chunk(OutStream::Stderr, "warn\n"))
            .await
            .unwrap();
        drop(out_tx); // the process exited
        let mut got = Vec::new();
        crd.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            deframe(&got),
            vec![(1, "hi\n".into()), (2, "warn\n".into())]
        );
        task.await.unwrap();
    }

    #[tokio::test]
    async fn pump_sends_tty_output_raw_and_ends_when_the_client_goes() {
        let (client, server) = tokio::io::duplex(64);
        let (out_tx, out_rx) = mpsc::channel(8);
        let session = IoSession {
            stdin: None,
            output: out_rx,
            tty: true,
        };
        let task = tokio::spawn(pump(server, session));
        out_tx.send(chunk(OutStream::Stdout, "$ ")).await.unwrap();
        let (mut crd, cwr) = tokio::io::split(client);
        let mut buf = [0u8; 2];
        crd.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"$ ");
        drop(crd);
        drop(cwr);
        // Output keeps coming but nobody reads: the pump stops and drops the session, so the
        // engine's sender sees the receiver gone.
        loop {
            if out_tx.send(chunk(OutStream::Stdout, "x")).await.is_err() {
                break;
            }
        }
        task.await.unwrap();
    }

    #[tokio::test]
    async fn attach_keeps_only_the_streams_asked_for() {
        let (tx, rx) = mpsc::channel(8);
        let s = only_streams(
            IoSession {
                stdin: None,
                output: rx,
                tty: false,
            },
            true,
            false,
        );
        tx.send(chunk(OutStream::Stderr, "e")).await.unwrap();
        tx.send(chunk(OutStream::Stdout, "o")).await.unwrap();
        drop(tx);
        let mut out = s.output;
        assert_eq!(out.recv().await, Some(chunk(OutStream::Stdout, "o")));
        assert_eq!(out.recv().await, None);
    }

    #[tokio::test]
    async fn json_lines_are_one_object_per_line() {
        use http_body_util::BodyExt;
        let r = json_lines(futures_util::stream::iter(vec![
            serde_json::json!({"status": "a"}),
            serde_json::json!({"status": "b"}),
        ]));
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"{\"status\":\"a\"}\n{\"status\":\"b\"}\n");
    }
}
