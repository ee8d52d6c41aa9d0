//! A registry that lies: it serves a layer whose bytes do not match the digest in the
//! manifest. The real docker-registry verifies uploads, so this one is a tiny HTTP server on
//! 127.0.0.1 written for the test.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use berth::image::{ImageError, ImageStore, Reference};
use serde_json::json;

use crate::registry::{Comp, Entry, layer, tar_of};

struct Served {
    /// Cut the first N layer responses off halfway (a dropped connection).
    cut_first: usize,
    /// Added to the layer's Content-Length (the body stays whole): a registry that lies about
    /// the length, shorter or longer than what it sends.
    length_lie: i64,
    /// Honour `Range: bytes=N-` on the layer with a 206, as docker-registry does (berth asks
    /// for the range from byte 0, which leaves the digest check to berth alone); without it,
    /// the whole blob with a 200, as a registry that ignores ranges does.
    ranges: bool,
    manifest: Vec<u8>,
    config: Vec<u8>,
    config_digest: String,
    layer_digest: String,
    layer: Vec<u8>,
}

fn serve(s: Served) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut layer_requests = 0;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut range_from: Option<usize> = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                let h = h.trim_end().to_ascii_lowercase();
                if let Some(r) = h.strip_prefix("range: bytes=") {
                    range_from = r.strip_suffix('-').and_then(|n| n.parse().ok());
                }
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("");
            let path = parts.next().unwrap_or("");
            let range = range_from
                .filter(|&n| s.ranges && path.ends_with(&s.layer_digest) && n <= s.layer.len());
            let (status, ctype, body): (&str, &str, &[u8]) = if path == "/v2/" {
                ("200 OK", "application/json", b"{}")
            } else if path.contains("/manifests/") {
                (
                    "200 OK",
                    "application/vnd.oci.image.manifest.v1+json",
                    &s.manifest,
                )
            } else if path.ends_with(&s.config_digest) {
                ("200 OK", "application/octet-stream", &s.config)
            } else if let Some(n) = range {
                (
                    "206 Partial Content",
                    "application/octet-stream",
                    &s.layer[n..],
                )
            } else if path.ends_with(&s.layer_digest) {
                ("200 OK", "application/octet-stream", &s.layer)
            } else {
                ("404 Not Found", "application/json", b"{}")
            };
            let lie = if path.ends_with(&s.layer_digest) {
                s.length_lie
            } else {
                0
            };
            let content_range = range
                .map(|n| {
                    let len = s.layer.len();
                    format!(
                        "Content-Range: bytes {n}-{}/{len}\r\n",
                        len.saturating_sub(1)
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n{content_range}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len() as i64 + lie
            );
            let mut body = body;
            if path.ends_with(&s.layer_digest) && method != "HEAD" {
                layer_requests += 1;
                if layer_requests <= s.cut_first {
                    body = &body[..body.len() / 2];
                }
            }
            if method != "HEAD" {
                let _ = conn.write_all(body);
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blob_is_refused_with_a_digest_error_and_leaves_nothing() {
    if !crate::support::require_root() {
        return;
    }
    let l = layer(
        tar_of(&[Entry::File("f", &vec![7u8; 100_000], 0o644)]),
        Comp::Gzip,
    );
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id.to_string()]},
    }))
    .unwrap();
    let config_digest = berth::image::Digest::of(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.blob.len()}],
    }))
    .unwrap();
    // Same length, one byte flipped in the middle of the compressed stream.
    let mut corrupt = l.blob.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    // A registry that honours the range berth asks for (berth's own digest check alone), and
    // one that sends the whole blob (oci-client checks it too).
    for ranges in [true, false] {
        let addr = serve(Served {
            cut_first: 0,
            length_lie: 0,
            ranges,
            manifest: manifest.clone(),
            config: config.clone(),
            config_digest: config_digest.to_string(),
            layer_digest: l.digest.to_string(),
            layer: corrupt.clone(),
        });
        let tmp = crate::registry::tempdir();
        let store = ImageStore::open(tmp.path()).unwrap();
        let err = store
            .pull(
                &Reference::parse(&format!("{addr}/lying/image:v1")).unwrap(),
                None,
                |_| {},
            )
            .await
            .unwrap_err();
        match &err {
            ImageError::DigestMismatch { expected, .. } => assert_eq!(expected, &l.digest),
            other => panic!("expected a digest mismatch (ranges: {ranges}), got {other}"),
        }
        assert!(
            !tmp.path()
                .join("images/blobs/sha256")
                .join(l.digest.hex())
                .exists(),
            "no blob under the claimed digest"
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join("images/ingest"))
                .unwrap()
                .count(),
            0,
            "no temp blob left"
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join("layers"))
                .unwrap()
                .count(),
            0,
            "no layer dir left"
        );
        assert!(store.list(&|_| 0).unwrap().is_empty(), "no image recorded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_layer_download_is_retried() {
    if !crate::support::require_root() {
        return;
    }
    let l = layer(
        tar_of(&[Entry::File("f", &vec![9u8; 300_000], 0o644)]),
        Comp::Gzip,
    );
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id.to_string()]},
    }))
    .unwrap();
    let config_digest = berth::image::Digest::of(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.blob.len()}],
    }))
    .unwrap();
    let addr = serve(Served {
        cut_first: 1,
        length_lie: 0,
        ranges: true,
        manifest,
        config,
        config_digest: config_digest.to_string(),
        layer_digest: l.digest.to_string(),
        layer: l.blob.clone(),
    });
    let tmp = crate::registry::tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let id = store
        .pull(
            &Reference::parse(&format!("{addr}/flaky/image:v1")).unwrap(),
            None,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(id, config_digest);
    assert!(
        tmp.path()
            .join("images/blobs/sha256")
            .join(l.digest.hex())
            .is_file()
    );
}

/// A registry that sends a wrong Content-Length for a layer, shorter and then longer than the
/// body: a typed error each time, no blob or layer stored, and the same pull from a registry
/// that tells the truth works into the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_length_is_a_typed_error_and_a_retry_from_a_true_registry_works() {
    if !crate::support::require_root() {
        return;
    }
    let l = layer(
        tar_of(&[Entry::File("f", &vec![5u8; 200_000], 0o644)]),
        Comp::Gzip,
    );
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id.to_string()]},
    }))
    .unwrap();
    let config_digest = berth::image::Digest::of(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.blob.len()}],
    }))
    .unwrap();
    let server = |lie: i64| {
        serve(Served {
            cut_first: 0,
            length_lie: lie,
            ranges: true,
            manifest: manifest.clone(),
            config: config.clone(),
            config_digest: config_digest.to_string(),
            layer_digest: l.digest.to_string(),
            layer: l.blob.clone(),
        })
    };
    let tmp = crate::registry::tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let nothing_stored = |what: &str| {
        assert!(
            !tmp.path()
                .join("images/blobs/sha256")
                .join(l.digest.hex())
                .exists(),
            "{what}: a blob under the claimed digest"
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join("images/ingest"))
                .unwrap()
                .count(),
            0,
            "{what}: a temp blob left"
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join("layers"))
                .unwrap()
                .count(),
            0,
            "{what}: a layer dir left"
        );
        assert!(
            store.list(&|_| 0).unwrap().is_empty(),
            "{what}: an image recorded"
        );
    };
    let size = l.blob.len() as u64;
    // Shorter: the body would be cut short where the header says.
    let short = server(-1000);
    let err = store
        .pull(
            &Reference::parse(&format!("{short}/lying/short:v1")).unwrap(),
            None,
            |_| {},
        )
        .await
        .unwrap_err();
    match &err {
        ImageError::SizeMismatch {
            digest,
            expected,
            actual,
        } => {
            assert_eq!(digest, &l.digest);
            assert_eq!(*expected, size);
            assert_eq!(*actual, size - 1000);
        }
        other => panic!("expected a size mismatch, got {other}"),
    }
    nothing_stored("short length");
    // Longer: the connection would end before the promised bytes.
    let long = server(1000);
    let err = store
        .pull(
            &Reference::parse(&format!("{long}/lying/long:v1")).unwrap(),
            None,
            |_| {},
        )
        .await
        .unwrap_err();
    match &err {
        ImageError::SizeMismatch {
            digest,
            expected,
            actual,
        } => {
            assert_eq!(digest, &l.digest);
            assert_eq!(*expected, size);
            assert_eq!(*actual, size + 1000);
        }
        other => panic!("expected a size mismatch, got {other}"),
    }
    nothing_stored("long length");
    // A registry that tells the truth: the same image pulls into the same store.
    let honest = server(0);
    let id = store
        .pull(
            &Reference::parse(&format!("{honest}/lying/short:v1")).unwrap(),
            None,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(id, config_digest);
    assert!(
        tmp.path()
            .join("images/blobs/sha256")
            .join(l.digest.hex())
            .is_file()
    );
    eprintln!(
        "wrong Content-Length: 2 lies (-1000, +1000 bytes) refused, retry from a true registry pulled"
    );
}
