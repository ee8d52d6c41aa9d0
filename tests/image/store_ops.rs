//! list / inspect / history / tag / remove / prune, and the copy snapshot fallback.

use std::os::unix::fs::FileTypeExt;

use berth::image::{ImageError, ImageStore, Reference, Removed, Rootfs, SnapshotMode};

use crate::fixtures::fixtures;

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_list_history_remove_prune() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = crate::registry::tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let id = store.pull(&r(&fx.multi_ref), None, |_| {}).await.unwrap();
    store.tag(&fx.multi_ref, &r("local/alias:1")).unwrap();
    store.tag(id.short(), &r("local/byid")).unwrap();

    let list = store.list(&|i| usize::from(i == &id)).unwrap();
    assert_eq!(list.len(), 1);
    let img = &list[0];
    assert_eq!(img.id, id);
    assert_eq!(img.containers, 1);
    let mut names: Vec<String> = img.names.iter().map(|n| n.familiar()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            format!("{}/berth-test/multi:v1", fx.reg),
            "local/alias:1".into(),
            "local/byid:latest".into()
        ]
    );
    assert_eq!(img.created.as_deref(), Some("2024-01-02T03:04:06Z"));
    assert_eq!(img.created_unix, Some(1_704_164_646));
    let blobs: u64 = fx.multi.layers.iter().map(|l| l.blob.len() as u64).sum();
    assert_eq!(img.compressed_size, blobs);
    assert!(
        img.size > 1_000_000,
        "unpacked size counts busybox: {}",
        img.size
    );

    let h = store.history("local/alias:1").unwrap();
    assert_eq!(h.len(), 4);
    assert_eq!(h[0].created_by, "CMD [\"sh\"]");
    assert!(h[0].empty_layer && h[0].size == 0);
    assert_eq!(h[3].created_by, "layer 0");
    assert!(h[3].size > 1_000_000);

    // Removing one of several names only untags.
    let gone = store.remove("local/alias:1", false, &|_| false).unwrap();
    assert_eq!(gone, vec![Removed::Untagged(r("local/alias:1"))]);
    // By id with several names: refused without force.
    assert!(matches!(
        store.remove(id.as_str(), false, &|_| false),
        Err(ImageError::MultipleTags { .. })
    ));
    // In use: refused without force.
    store.remove(&fx.multi_ref, false, &|_| false).unwrap();
    let err = store.remove("local/byid", false, &|_| true).unwrap_err();
    assert!(matches!(err, ImageError::InUse { .. }), "{err}");
    // Forced while in use: the name goes, the content stays (dangling) for the container.
    let gone = store.remove("local/byid", true, &|_| true).unwrap();
    assert_eq!(gone, vec![Removed::Untagged(r("local/byid"))]);
    let list = store.list(&|_| 0).unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].names.is_empty(), "dangling");
    // Prune of dangling images spares the one in use, then removes it once unused.
    let (removed, freed) = store.prune(false, &|_| true).unwrap();
    assert!(removed.is_empty() && freed == 0);
    let (removed, freed) = store.prune(false, &|_| false).unwrap();
    assert_eq!(removed, vec![Removed::Deleted(id.clone())]);
    assert!(freed > 1_000_000, "freed {freed}");
    assert!(store.list(&|_| 0).unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(tmp.path().join("images/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(tmp.path().join("layers"))
            .unwrap()
            .count(),
        0
    );
    assert!(matches!(
        store.inspect(&fx.multi_ref),
        Err(ImageError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_all_removes_unused_tagged_images() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = crate::registry::tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let multi = store.pull(&r(&fx.multi_ref), None, |_| {}).await.unwrap();
    let simple = store.pull(&r(&fx.v2s2_ref), None, |_| {}).await.unwrap();
    let (removed, _) = store.prune(true, &|i| i == &simple).unwrap();
    assert!(removed.contains(&Removed::Deleted(multi)));
    let left = store.list(&|_| 0).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, simple);
    // The shared busybox layer stays: the remaining image uses it.
    let prepared = store
        .prepare_rootfs(&fx.v2s2_ref, &tmp.path().join("c"))
        .unwrap();
    let Rootfs::Overlay { lowerdirs, .. } = prepared.rootfs else {
        panic!()
    };
    assert!(lowerdirs[0].join("bin/busybox").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_snapshot_applies_whiteouts() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = crate::registry::tempdir();
    let mut store = ImageStore::open(tmp.path()).unwrap();
    assert_eq!(
        store.snapshot_mode(),
        SnapshotMode::Overlay,
        "overlay works on this host"
    );
    store.pull(&r(&fx.multi_ref), None, |_| {}).await.unwrap();
    store.set_snapshot_mode(SnapshotMode::Copy);
    let p = store
        .prepare_rootfs(&fx.multi_ref, &tmp.path().join("c1"))
        .unwrap();
    let Rootfs::Copy { dir } = &p.rootfs else {
        panic!("{:?}", p.rootfs)
    };
    assert!(dir.join("bin/busybox").is_file());
    assert!(!dir.join("etc/gone").exists());
    assert_eq!(
        std::fs::read(dir.join("etc/new")).unwrap(),
        b"from the zstd layer\n"
    );
    let mut cache: Vec<_> = std::fs::read_dir(dir.join("var/cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    cache.sort();
    assert_eq!(cache, vec!["c"]);
    assert!(
        !std::fs::symlink_metadata(dir.join("etc"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(
        std::fs::read_link(dir.join("bin/sh")).unwrap(),
        std::path::PathBuf::from("busybox")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_tag_leaves_the_old_image_dangling() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let tmp = crate::registry::tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let old = store.pull(&r(&fx.multi_ref), None, |_| {}).await.unwrap();
    let new = store.pull(&r(&fx.v2s2_ref), None, |_| {}).await.unwrap();
    store.tag(&fx.v2s2_ref, &r("app:prod")).unwrap();
    store.tag(&fx.multi_ref, &r("app:prod")).unwrap(); // moves app:prod to the old image
    assert_eq!(store.image_id("app:prod").unwrap(), old);
    store.remove(&fx.multi_ref, false, &|_| false).unwrap(); // untag only: app:prod remains
    store.tag(&fx.v2s2_ref, &r("app:prod")).unwrap(); // and back: old has no name left
    let list = store.list(&|_| 0).unwrap();
    let dangling: Vec<_> = list.iter().filter(|i| i.names.is_empty()).collect();
    assert_eq!(dangling.len(), 1);
    assert_eq!(dangling[0].id, old);
    let (removed, freed) = store.prune(false, &|_| false).unwrap();
    assert_eq!(removed, vec![Removed::Deleted(old.clone())]);
    assert!(freed > 0);
    assert_eq!(store.image_id("app:prod").unwrap(), new);
    assert!(matches!(
        store.image_id(old.as_str()),
        Err(ImageError::NotFound { .. })
    ));
}
