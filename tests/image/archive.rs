//! save / load (docker-save and OCI archives, legacy docker archives) and import.

use std::io::Write;
use std::process::Command;

use berth::image::{Digest, ImageError, ImageStore, Reference, RunConfig};
use serde_json::json;

use crate::fixtures::fixtures;
use crate::registry::{Comp, Entry, layer, tar_of, tempdir};

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn tar_files(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_then_load_round_trips_and_other_tools_read_it() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(&tmp.path().join("a")).unwrap();
    let id = store.pull(&r(&fx.multi_ref), None, |_| {}).await.unwrap();
    let file = tmp.path().join("multi.tar");
    store.save_to(&[&fx.multi_ref], &file).unwrap();

    // skopeo reads it both as an OCI archive and as a docker archive.
    for src in [
        format!("oci-archive:{}:v1", file.display()),
        format!("docker-archive:{}", file.display()),
    ] {
        let o = Command::new("skopeo")
            .arg("inspect")
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo inspect {src}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let other = ImageStore::open(&tmp.path().join("b")).unwrap();
    let loaded = other
        .load(std::fs::File::open(&file).unwrap(), "multi.tar")
        .unwrap();
    assert_eq!(loaded, vec![(id.clone(), vec![r(&fx.multi_ref)])]);
    let d = other.inspect(&fx.multi_ref).unwrap();
    assert_eq!(
        d.summary.digest, fx.multi.manifest_digest,
        "manifest kept byte for byte"
    );
    let p = other
        .prepare_rootfs(&fx.multi_ref, &tmp.path().join("c"))
        .unwrap();
    let berth::image::Rootfs::Overlay { lowerdirs, .. } = p.rootfs else {
        panic!()
    };
    assert_eq!(
        std::fs::read(lowerdirs[1].join("etc/new")).unwrap(),
        b"from the zstd layer\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_legacy_docker_archive() {
    if !crate::support::require_root() {
        return;
    }
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let tar1 = tar_of(&[
        Entry::Dir("etc/"),
        Entry::File("etc/hello", b"legacy\n", 0o644),
    ]);
    let diff = Digest::of(&tar1);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff.to_string()]},
    }))
    .unwrap();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let manifest = serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": ["legacy/app:1"], "Layers": ["abc/layer.tar"]}])).unwrap();
    let archive = tar_files(&[
        (&config_name, &config),
        ("abc/layer.tar", &tar1),
        ("abc/VERSION", b"1.0"),
        ("manifest.json", &manifest),
    ]);
    let loaded = store.load(&archive[..], "legacy.tar").unwrap();
    assert_eq!(loaded[0].1, vec![r("legacy/app:1")]);
    assert_eq!(loaded[0].0, Digest::of(&config));
    let p = store
        .prepare_rootfs("legacy/app:1", &tmp.path().join("c"))
        .unwrap();
    let berth::image::Rootfs::Overlay { lowerdirs, .. } = p.rootfs else {
        panic!()
    };
    assert_eq!(
        std::fs::read(lowerdirs[0].join("etc/hello")).unwrap(),
        b"legacy\n"
    );
}

#[test]
fn load_refuses_a_corrupt_blob() {
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let good = Digest::of(b"the real content");
    let name = format!("blobs/sha256/{}", good.hex());
    let archive = tar_files(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        (&name, b"something else"),
    ]);
    let err = store.load(&archive[..], "bad.tar").unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(!store.layout_dir().join(&name).exists());
    assert_eq!(
        std::fs::read_dir(store.layout_dir().join("ingest"))
            .unwrap()
            .count(),
        0
    );
    let err = store
        .load(&b"not a tar at all, certainly not"[..], "junk")
        .unwrap_err();
    assert!(matches!(err, ImageError::BadArchive { .. }), "{err}");
}

#[test]
fn import_rootfs_tarball() {
    if !crate::support::require_root() {
        return;
    }
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let rootfs = layer(
        tar_of(&[
            Entry::Dir("bin/"),
            Entry::File("bin/tool", b"#!/bin/sh\n", 0o755),
        ]),
        Comp::Gzip,
    );
    let run = RunConfig {
        cmd: Some(vec!["/bin/tool".into()]),
        ..Default::default()
    };
    let id = store
        .import(&rootfs.blob[..], Some(&r("imported/rootfs:v1")), run)
        .unwrap();
    let d = store.inspect("imported/rootfs:v1").unwrap();
    assert_eq!(d.summary.id, id);
    assert_eq!(d.diff_ids, vec![rootfs.diff_id.clone()]);
    assert_eq!(
        d.config.config.cmd.as_deref(),
        Some(&["/bin/tool".to_string()][..])
    );
    assert_eq!(
        store.history("imported/rootfs:v1").unwrap()[0].created_by,
        "berth import"
    );
    let p = store
        .prepare_rootfs(id.as_str(), &tmp.path().join("c"))
        .unwrap();
    let berth::image::Rootfs::Overlay { lowerdirs, .. } = p.rootfs else {
        panic!()
    };
    assert_eq!(
        std::fs::read(lowerdirs[0].join("bin/tool")).unwrap(),
        b"#!/bin/sh\n"
    );

    // A hostile tarball is refused and leaves no image.
    let evil = tar_of(&[Entry::File("../../escape", b"x", 0o644)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&evil).unwrap();
    let err = store
        .import(
            &gz.finish().unwrap()[..],
            Some(&r("evil/import")),
            RunConfig::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ImageError::UnsafeEntry { .. }), "{err}");
    assert!(matches!(
        store.inspect("evil/import"),
        Err(ImageError::NotFound { .. })
    ));
    assert_eq!(store.list(&|_| 0).unwrap().len(), 1);
}
