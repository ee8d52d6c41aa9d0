//! Image fixtures for tests that need a registry: build OCI layouts offline (busybox-static,
//! hand-made layer tars with gzip / zstd / no compression, whiteouts, hostile entries), push them
//! with skopeo to the test registry on 127.0.0.1 (env `BERTH_TEST_REGISTRY`, default
//! `127.0.0.1:5055`), started by the test script (Debian `docker-registry`).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth::image::Digest;
use serde_json::json;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The test registry's `host:port`.
pub fn registry() -> String {
    std::env::var("BERTH_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5055".into())
}

/// Fails loudly when the registry is not up: these tests must not silently skip.
pub fn require_registry() -> String {
    let r = registry();
    let ok = std::net::TcpStream::connect_timeout(
        &r.parse()
            .expect("BERTH_TEST_REGISTRY must be host:port with an IP"),
        std::time::Duration::from_secs(2),
    )
    .is_ok();
    assert!(
        ok,
        "no registry at {r}: tests/run.sh starts one (Debian docker-registry); or set BERTH_TEST_REGISTRY"
    );
    r
}

/// One tar entry; names are written raw, so hostile names survive.
pub enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A regular file taken from the host (busybox).
    HostFile(&'a str, &'a Path, u32),
}

pub fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push =
        |name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>, mode: u32| {
            let mut h = tar::Header::new_gnu();
            {
                let gnu = h.as_gnu_mut().unwrap();
                gnu.name[..name.len()].copy_from_slice(name.as_bytes());
                if let Some(l) = link {
                    gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
                }
            }
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
        };
    for e in entries {
        match e {
            Entry::File(n, d, m) => push(n, tar::EntryType::Regular, d, None, *m),
            Entry::Dir(n) => push(n, tar::EntryType::Directory, &[], None, 0o755),
            Entry::Symlink(n, t) => push(n, tar::EntryType::Symlink, &[], Some(t), 0o777),
            Entry::Hardlink(n, t) => push(n, tar::EntryType::Link, &[], Some(t), 0o644),
            Entry::HostFile(n, p, m) => push(
                n,
                tar::EntryType::Regular,
                &std::fs::read(p).unwrap(),
                None,
                *m,
            ),
        }
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

#[derive(Clone, Debug)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: &'static str,
    pub digest: Digest,
    pub diff_id: Digest,
}

pub fn layer(tar: Vec<u8>, comp: Comp) -> Layer {
    let diff_id = Digest::of(&tar);
    let (blob, media_type) = match comp {
        Comp::None => (tar, "application/vnd.oci.image.layer.v1.tar"),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).unwrap();
            (
                e.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Comp::Zstd => (
            zstd::encode_all(&tar[..], 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    };
    Layer {
        digest: Digest::of(&blob),
        blob,
        media_type,
        diff_id,
    }
}

/// An image written into an OCI layout: its manifest bytes and digest, its config digest.
#[derive(Clone, Debug)]
pub struct Built {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layers: Vec<Layer>,
}

fn put_blob(layout: &Path, data: &[u8]) -> Digest {
    let d = Digest::of(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(d.hex()), data).unwrap();
    d
}

/// Writes the image's blobs into `layout` (not its name: see `name_in_layout`).
pub fn build_image(layout: &Path, layers: &[Layer], arch: &str, run: serde_json::Value) -> Built {
    std::fs::create_dir_all(layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let history: Vec<_> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| json!({"created": "2024-01-02T03:04:05Z", "created_by": format!("layer {i}")}))
        .chain([json!({"created": "2024-01-02T03:04:06Z", "created_by": "CMD [\"sh\"]", "empty_layer": true})])
        .collect();
    let config = json!({
        "created": "2024-01-02T03:04:06Z",
        "architecture": arch,
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        "history": history,
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put_blob(layout, &config);
    for l in layers {
        put_blob(layout, &l.blob);
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
        "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.blob.len()})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put_blob(layout, &manifest);
    Built {
        manifest,
        manifest_digest,
        config_digest,
        layers: layers.to_vec(),
    }
}

/// Writes an OCI index over several built images, each with its platform; returns its digest.
pub fn build_index(layout: &Path, entries: &[(&Built, &str, &str)]) -> (Vec<u8>, Digest) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries.iter().map(|(b, os, arch)| json!({
            "mediaType": OCI_MANIFEST, "digest": b.manifest_digest.to_string(), "size": b.manifest.len(),
            "platform": {"os": os, "architecture": arch}
        })).collect::<Vec<_>>(),
    });
    let data = serde_json::to_vec(&index).unwrap();
    let d = put_blob(layout, &data);
    (data, d)
}

/// Names a manifest (or index) in the layout's index.json under `tag`.
pub fn name_in_layout(layout: &Path, tag: &str, media_type: &str, digest: &Digest, size: usize) {
    let p = layout.join("index.json");
    let mut idx: serde_json::Value = std::fs::read(&p)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(|| json!({"schemaVersion": 2, "manifests": []}));
    let list = idx["manifests"].as_array_mut().unwrap();
    list.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
    list.push(json!({
        "mediaType": media_type, "digest": digest.to_string(), "size": size,
        "annotations": {"org.opencontainers.image.ref.name": tag}
    }));
    std::fs::write(&p, serde_json::to_vec(&idx).unwrap()).unwrap();
}

/// Pushes `oci:<layout>:<tag>` to `docker://<registry>/<repo>` with skopeo (plain HTTP).
pub fn skopeo_push(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .args(extra)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo (Debian package skopeo) must be installed");
    assert!(
        out.status.success(),
        "skopeo push {dest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names the image `built` in the layout under `tag` and pushes it to `dest` with skopeo.
pub fn push_built(layout: &Path, built: &Built, tag: &str, dest: &str, extra: &[&str]) {
    name_in_layout(
        layout,
        tag,
        OCI_MANIFEST,
        &built.manifest_digest,
        built.manifest.len(),
    );
    skopeo_push(layout, tag, dest, extra);
}

/// A fresh temp dir under /var/tmp (overlay-capable, unlike a tmpfs /tmp on some hosts).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-image-test-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

pub fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).is_file() {
            return p.into();
        }
    }
    panic!("busybox-static (Debian package busybox-static) must be installed");
}
