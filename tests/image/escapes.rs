//! Hostile layers pulled from the registry: each escape is refused with an UnsafeEntry error,
//! nothing is written outside the store, and no partial layer or image is left.

use berth::image::{ImageError, ImageStore, Reference};

use crate::fixtures::{ESCAPE_TARGET, fixtures};

fn snapshot(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_layers_are_refused_and_write_nothing_outside() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    let target = std::path::Path::new(ESCAPE_TARGET);
    std::fs::create_dir_all(target).unwrap();
    std::fs::write(target.join("victim"), b"original").unwrap();
    let before = snapshot(target);
    let tmp = crate::registry::tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    for (reference, what) in &fx.evil {
        let err = store
            .pull(&Reference::parse(reference).unwrap(), None, |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(err, ImageError::UnsafeEntry { .. }),
            "{what}: expected UnsafeEntry, got {err}"
        );
        assert_eq!(
            snapshot(target),
            before,
            "{what}: something appeared in {ESCAPE_TARGET}"
        );
        assert_eq!(
            std::fs::read(target.join("victim")).unwrap(),
            b"original",
            "{what}"
        );
        let meta = std::fs::metadata(target.join("victim")).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::nlink(&meta),
            1,
            "{what}: victim got a hard link"
        );
    }
    // Nothing half-done in the store: no image, no layer, no staging dir, no ingest file.
    assert!(store.list(&|_| 0).unwrap().is_empty());
    assert!(
        snapshot(&tmp.path().join("layers")).is_empty(),
        "{:?}",
        snapshot(&tmp.path().join("layers"))
    );
    assert!(snapshot(&tmp.path().join("images/ingest")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_upper_layer_fails_the_pull_and_leaves_no_staging() {
    if !crate::support::require_root() {
        return;
    }
    let fx = fixtures();
    std::fs::create_dir_all(ESCAPE_TARGET).unwrap();
    let tmp = crate::registry::tempdir();
    let store = ImageStore::open(tmp.path()).unwrap();
    let err = store
        .pull(&Reference::parse(&fx.evil_multi).unwrap(), None, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::UnsafeEntry { .. }), "{err}");
    assert!(!std::path::Path::new(ESCAPE_TARGET).join("multi").exists());
    assert!(store.list(&|_| 0).unwrap().is_empty(), "no image recorded");
    // The good layer may have been kept (it is verified content); nothing half-done is.
    let left = snapshot(&tmp.path().join("layers"));
    assert!(left.iter().all(|n| !n.starts_with(".tmp-")), "{left:?}");
    assert!(
        left.len() <= 2,
        "at most the good layer and its record: {left:?}"
    );
    assert!(snapshot(&tmp.path().join("images/ingest")).is_empty());
    // A later prune removes the unreferenced good layer too.
    let (_, freed) = store.prune(false, &|_| false).unwrap();
    assert!(snapshot(&tmp.path().join("layers")).is_empty());
    assert!(left.is_empty() || freed > 0);
}
