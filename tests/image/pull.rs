//! Pulls from the real registry: multi-layer (gzip, zstd, plain, whiteouts), by digest, an
//! index, a Docker schema 2 image, concurrent pulls, push and pull back; skopeo reads the store.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Command;
use std::sync::{Arc, Mutex};

use berth::image::{ImageError, ImageStore, Phase, Platform, ProgressUpdate, Reference, Rootfs};

use crate::fixtures::fixtures;
use crate::registry::tempdir;

type Log = Arc<Mutex<Vec<ProgressUpdate>>>;

fn recorder() -> (Log, impl Fn(ProgressUpdate) + Send + Sync + 'static) {
    let log: Log = Arc::default();
    let l2 = log.clone();
    (log, move |u| l2.lock().unwrap().push(u))
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// The chain-id directory of the top layer, from inspect.
fn layer_dirs(store: &ImageStore, image: &str) -> Vec<std::path::PathBuf> {
    let d = store.inspect(image).unwrap();
    let mut chain: Option<berth::image::Digest> = None;
    d.diff_ids
        .iter()
        .map(|diff| {
            let next = match &chain {
                None => diff.clone(),
                Some(p) => berth::image::Digest::of(format!("{p} {diff}").as_bytes()),
            };
            chain = Some(next.clone());
            store.root().join("layers").join(next.hex())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_multi_layer_gzip_zstd_plain_with_whiteouts() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let (log, progress) = recorder();
    let id = store.pull(&r(&fx.multi_ref), None, progress).await.unwrap();
    assert_eq!(id, fx.multi.config_digest, "image id is the config digest");

    // Progress: every layer went waiting → … → complete, with its total.
    let log = log.lock().unwrap().clone();
    for l in &fx.multi.layers {
        let mine: Vec<_> = log.iter().filter(|u| u.layer == l.digest).collect();
        assert_eq!(mine.first().unwrap().phase, Phase::Waiting);
        let last = mine.last().unwrap();
        assert_eq!(
            (last.phase, last.current, last.total),
            (Phase::Complete, l.blob.len() as u64, l.blob.len() as u64)
        );
        assert!(mine.iter().any(|u| u.phase == Phase::Downloading));
    }

    // Blobs are in the OCI layout under their digests; nothing half-written is left.
    for l in &fx.multi.layers {
        let p = tmp.path().join("images/blobs/sha256").join(l.digest.hex());
        assert_eq!(std::fs::read(&p).unwrap(), l.blob);
    }
    assert_eq!(
        std::fs::read_dir(tmp.path().join("images/ingest"))
            .unwrap()
            .count(),
        0
    );

    // Layers: per chain id, whiteouts in overlay form.
    let dirs = layer_dirs(&store, &fx.multi_ref);
    assert_eq!(dirs.len(), 3);
    assert!(dirs[0].join("bin/busybox").is_file());
    let wh = std::fs::symlink_metadata(dirs[1].join("etc/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout became a 0/0 char device"
    );
    assert_eq!(
        std::fs::read(dirs[1].join("etc/new")).unwrap(),
        b"from the zstd layer\n"
    );
    assert_eq!(
        std::fs::metadata(dirs[2].join("etc/plain")).unwrap().mode() & 0o777,
        0o600
    );

    // Inspect: the config the api builds containers from.
    let d = store.inspect(&fx.multi_ref).unwrap();
    let c = &d.config.config;
    assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(
        c.entrypoint.as_deref(),
        Some(&["/bin/busybox".to_string()][..])
    );
    assert!(
        c.env
            .as_ref()
            .unwrap()
            .contains(&"GREETING=hello".to_string())
    );
    assert_eq!(
        c.exposed_ports.as_deref(),
        Some(&["8080/tcp".to_string()][..])
    );
    assert_eq!(c.labels.as_ref().unwrap()["org.example.test"], "multi");
    assert_eq!(c.working_dir.as_deref(), Some("/etc"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(d.summary.digest, fx.multi.manifest_digest);
    assert_eq!(
        d.summary.repo_digests,
        vec![format!(
            "{}/berth-test/multi@{}",
            fx.reg, fx.multi.manifest_digest
        )]
    );

    // The merged view through a real overlay mount: whiteout and opaque dir take effect.
    let cdir = tmp.path().join("containers/c1");
    let prepared = store.prepare_rootfs(&fx.multi_ref, &cdir).unwrap();
    let Rootfs::Overlay {
        lowerdirs,
        upperdir,
        workdir,
    } = &prepared.rootfs
    else {
        panic!("overlay works on this host; got {:?}", prepared.rootfs)
    };
    assert_eq!(lowerdirs.len(), 3);
    assert_eq!(lowerdirs[0], dirs[2], "top layer first");
    assert!(upperdir.is_dir() && workdir.is_dir());
    let merged = cdir.join("merged");
    std::fs::create_dir_all(&merged).unwrap();
    let opts = prepared.rootfs.overlay_options().unwrap();
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(st.success());
    let check = std::panic::catch_unwind(|| {
        assert!(
            !merged.join("etc/gone").exists(),
            "whiteout hides the lower file"
        );
        let mut cache: Vec<_> = std::fs::read_dir(merged.join("var/cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        cache.sort();
        assert_eq!(cache, vec!["c"], "opaque dir hides the lower entries");
        let out = Command::new("chroot")
            .arg(&merged)
            .args(["/bin/cat", "/etc/new", "/etc/base"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "from the zstd layer\nbase layer\n"
        );
    });
    let _ = Command::new("umount").arg(&merged).status();
    if let Err(p) = check {
        std::panic::resume_unwind(p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_digest_and_again_is_already_there() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let by_digest = format!("{}/berth-test/multi@{}", fx.reg, fx.multi.manifest_digest);
    let id = store.pull(&r(&by_digest), None, |_| {}).await.unwrap();
    assert_eq!(id, fx.multi.config_digest);
    let list = store.list(&|_| 0).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].names,
        vec![r(&by_digest)],
        "a digest pull records no tag"
    );
    // The same image by tag: every layer is already there.
    let (log, progress) = recorder();
    store.pull(&r(&fx.multi_ref), None, progress).await.unwrap();
    let log = log.lock().unwrap().clone();
    for l in &fx.multi.layers {
        assert!(
            log.iter()
                .any(|u| u.layer == l.digest && u.phase == Phase::AlreadyExists)
        );
        assert!(
            !log.iter()
                .any(|u| u.layer == l.digest && u.phase == Phase::Downloading)
        );
    }
    assert_eq!(store.list(&|_| 0).unwrap().len(), 1, "one image, two names");
    // A digest that is not the manifest's is refused.
    let wrong = format!("{}/berth-test/multi@{}", fx.reg, fx.arm.manifest_digest);
    assert!(store.pull(&r(&wrong), None, |_| {}).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_index_picks_platform() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let amd = Platform::parse("linux/amd64").unwrap();
    let id = store
        .pull(&r(&fx.index_ref), Some(&amd), |_| {})
        .await
        .unwrap();
    assert_eq!(id, fx.multi.config_digest);
    let arm = Platform::parse("linux/arm64").unwrap();
    let arm_ref = format!("{}/berth-test/index:v1", fx.reg);
    let id = store.pull(&r(&arm_ref), Some(&arm), |_| {}).await.unwrap();
    assert_eq!(id, fx.arm.config_digest);
    let d = store.inspect(id.as_str()).unwrap();
    assert_eq!(d.config.architecture, "arm64");
    assert_eq!(
        d.summary.repo_digests,
        vec![format!("{}/berth-test/index@{}", fx.reg, fx.index_digest)]
    );
    let s390 = Platform::parse("linux/s390x").unwrap();
    let err = store
        .pull(&r(&fx.index_ref), Some(&s390), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImageError::NoMatchingPlatform { .. }),
        "{err}"
    );
    // By the index's digest too.
    let by_digest = format!("{}/berth-test/index@{}", fx.reg, fx.index_digest);
    assert_eq!(
        store
            .pull(&r(&by_digest), Some(&amd), |_| {})
            .await
            .unwrap(),
        fx.multi.config_digest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_docker_schema2() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    store.pull(&r(&fx.v2s2_ref), None, |_| {}).await.unwrap();
    let d = store.inspect(&fx.v2s2_ref).unwrap();
    assert_eq!(
        d.manifest_media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        d.config.config.cmd.as_deref(),
        Some(&["sh".to_string()][..])
    );
    let dirs = layer_dirs(&store, &fx.v2s2_ref);
    assert!(dirs[0].join("bin/busybox").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_share_layers() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let (log, p1) = recorder();
    let l2 = log.clone();
    let p2 = move |u| l2.lock().unwrap().push(u);
    let reference = r(&fx.multi_ref);
    let (a, b) = tokio::join!(
        store.pull(&reference, None, p1),
        store.pull(&reference, None, p2)
    );
    assert_eq!(a.unwrap(), b.unwrap());
    let log = log.lock().unwrap().clone();
    let mut counts: HashMap<(&str, Phase), usize> = HashMap::new();
    for u in log.iter() {
        *counts.entry((u.layer.as_str(), u.phase)).or_default() += 1;
    }
    for l in &fx.multi.layers {
        assert_eq!(
            counts.get(&(l.digest.as_str(), Phase::Complete)),
            Some(&1),
            "downloaded once"
        );
        assert_eq!(
            counts.get(&(l.digest.as_str(), Phase::AlreadyExists)),
            Some(&1),
            "the other pull waited"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_back_and_pull_under_another_name() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    store.pull(&r(&fx.multi_ref), None, |_| {}).await.unwrap();
    let name = format!("{}/berth-test/pushed-{}:v2", fx.reg, std::process::id());
    store.tag(&fx.multi_ref, &r(&name)).unwrap();
    let (log, progress) = recorder();
    let digest = store.push(&r(&name), progress).await.unwrap();
    assert_eq!(
        digest, fx.multi.manifest_digest,
        "manifest pushed byte for byte"
    );
    assert!(log.lock().unwrap().iter().all(|u| matches!(
        u.phase,
        Phase::Uploading | Phase::Complete | Phase::AlreadyExists
    )));

    let tmp2 = tempdir();
    let fresh = ImageStore::open(tmp2.path()).unwrap();
    let id = fresh.pull(&r(&name), None, |_| {}).await.unwrap();
    assert_eq!(id, fx.multi.config_digest);
    let dirs = layer_dirs(&fresh, &name);
    assert_eq!(
        std::fs::read(dirs[1].join("etc/new")).unwrap(),
        b"from the zstd layer\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_the_store() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    store.pull(&r(&fx.multi_ref), None, |_| {}).await.unwrap();
    let name = r(&fx.multi_ref).to_string();
    let out = tmp.path().join("copied");
    let o = Command::new("skopeo")
        .args(["copy", "--preserve-digests"])
        .arg(format!("oci:{}:{name}", store.layout_dir().display()))
        .arg(format!("oci:{}:copy", out.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for l in &fx.multi.layers {
        assert!(out.join("blobs/sha256").join(l.digest.hex()).is_file());
    }
    let o = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:{name}", store.layout_dir().display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Digest"], fx.multi.manifest_digest.to_string());
}

/// The dispatcher runs pulls and pushes on spawned tasks: their futures must be Send, and the
/// store shareable.
#[test]
fn futures_are_send_and_the_store_is_shareable() {
    fn send<T: Send>(_: &T) {}
    fn shared<T: Send + Sync>() {}
    shared::<ImageStore>();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let reference = r("127.0.0.1:1/never/polled");
    let pull = store.pull(&reference, None, |_| {});
    send(&pull);
    let push = store.push(&reference, |_| {});
    send(&push);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_layer_dir_is_unpacked_again_from_the_stored_blob() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    store.pull(&r(&fx.multi_ref), None, |_| {}).await.unwrap();
    let dirs = layer_dirs(&store, &fx.multi_ref);
    // Lose the middle layer's directory (its record first, as a removal does).
    std::fs::remove_file(dirs[1].with_extension("json")).unwrap();
    std::fs::remove_dir_all(&dirs[1]).unwrap();
    let (log, progress) = recorder();
    store.pull(&r(&fx.multi_ref), None, progress).await.unwrap();
    let log = log.lock().unwrap().clone();
    let middle = &fx.multi.layers[1].digest;
    assert!(
        log.iter()
            .any(|u| &u.layer == middle && u.phase == Phase::Extracting)
    );
    assert!(
        !log.iter()
            .any(|u| &u.layer == middle && u.phase == Phase::Downloading),
        "not downloaded again"
    );
    assert!(
        std::fs::symlink_metadata(dirs[1].join("etc/gone"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
}
