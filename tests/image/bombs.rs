//! Decompression and sparse-file bombs through a real pull (issue #11): a gzip layer holding one
//! file of zeros a little past the expansion limit's 1 GiB floor (~1 MiB compressed), and a GNU
//! sparse entry declaring 64 GiB of holes, pushed to the test registry and pulled through the
//! library and through `berth pull`. The store lives on a 64 MiB tmpfs: a pull that wrote the
//! bomb out would fail with "No space left on device" instead of the refusal asserted here, so
//! the refusal is proven to come before the disk fills. Afterwards nothing of the bomb is in the
//! store, the tmpfs's usage is back to what it was, and a good image pulls into the same store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth::image::{Digest, ImageError, ImageStore, Reference};

use crate::crash::berth;
use crate::registry::{Built, Comp, Layer, build_image, layer, push_built};
use crate::smallfs::SmallFs;

/// The bomb file's size: 64 MiB past the expansion limit's 1 GiB floor.
const BOMB_BYTES: u64 = (1 << 30) + (64 << 20);

/// The sha256 of the bomb's uncompressed tar (its diff id), computed once over the same bytes
/// (`(head -c 512 header; head -c $((BOMB_BYTES + 1024)) /dev/zero) | sha256sum`): hashing the
/// 1.06 GiB in the test would cost seconds. The header's own digest is checked below, so a
/// change to the header cannot leave this stale unnoticed. A real pull never gets to compare it:
/// the layer is refused first; without the limit the pull would succeed, and the test fail.
const BOMB_DIFF_ID: &str =
    "sha256:9e413cb756d5cf8d7a1d79ca4ebce075b1a35bed2d5c8cdf5053c8b54846ccb4";
const BOMB_HEADER_SHA: &str =
    "sha256:6cb87bad22059f94ede5f3315a714ab57cb85d9207f54fb1428de9a82483db3d";

struct Bombs {
    gzip_ref: String,
    gzip_layer: Digest,
    sparse_ref: String,
    sparse_layer: Digest,
    /// A good layer under the sparse bomb: the good one is pulled whole, then discarded.
    mixed_ref: String,
}

static BOMBS: OnceLock<Bombs> = OnceLock::new();

fn bomb_header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(BOMB_BYTES);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The gzip bomb, built without ever holding the expanded bytes: a gzip stream may be a series
/// of members (RFC 1952), so the blob is the header's member, then one member of 1 MiB of zeros
/// repeated, then the end-of-archive's member.
fn gzip_bomb() -> Layer {
    let header = bomb_header();
    assert_eq!(
        Digest::of(header.as_bytes()).to_string(),
        BOMB_HEADER_SHA,
        "the bomb's header changed: recompute BOMB_DIFF_ID and BOMB_HEADER_SHA"
    );
    let mib = gzip_member(&vec![0u8; 1 << 20]);
    let mut blob = gzip_member(header.as_bytes());
    for _ in 0..BOMB_BYTES >> 20 {
        blob.extend_from_slice(&mib);
    }
    blob.extend_from_slice(&gzip_member(&[0u8; 1024]));
    assert!(
        (blob.len() as u64) * 200 < BOMB_BYTES,
        "a bomb: more than 200x ({} compressed bytes)",
        blob.len()
    );
    Layer {
        digest: Digest::of(&blob),
        blob,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        diff_id: BOMB_DIFF_ID.parse().unwrap(),
    }
}

/// An old-style GNU sparse entry: 512 bytes of data at the end of 64 GiB of holes.
fn sparse_bomb() -> Layer {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..6].copy_from_slice(b"sparse");
        gnu.sparse[0].set_offset((64 << 30) - 512);
        gnu.sparse[0].set_length(512);
        gnu.set_real_size(64 << 30);
    }
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(512);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[7u8; 512]);
    tar.extend_from_slice(&[0u8; 1024]);
    layer(tar, Comp::Gzip)
}

fn bombs() -> &'static Bombs {
    BOMBS.get_or_init(|| {
        let reg = crate::registry::require_registry();
        let tmp = crate::registry::tempdir();
        let lay = tmp.path().join("layout");
        // Returns the reference and the last layer's digest.
        let push = |tag: &str, l: Vec<Layer>| -> (String, Digest) {
            let b: Built = build_image(&lay, &l, "amd64", serde_json::json!({"Cmd": ["sh"]}));
            let r = format!("{reg}/berth-test/bomb-{tag}:v1");
            push_built(&lay, &b, tag, &r, &["--preserve-digests"]);
            (r, b.layers.last().unwrap().digest.clone())
        };
        let (gzip_ref, gzip_layer) = push("gzip", vec![gzip_bomb()]);
        let (sparse_ref, sparse_layer) = push("sparse", vec![sparse_bomb()]);
        let good = layer(
            crate::registry::tar_of(&[crate::registry::Entry::File("good", b"good\n", 0o644)]),
            Comp::Gzip,
        );
        let (mixed_ref, _) = push("mixed", vec![good, sparse_bomb()]);
        Bombs {
            mixed_ref,
            gzip_ref,
            gzip_layer,
            sparse_ref,
            sparse_layer,
        }
    })
}

/// Every path under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Nothing of the refused layer: no blob, no layer or staging directory, no image record, no
/// ingest file, and the check finds the store consistent with no debris.
fn assert_nothing_of(store: &ImageStore, reference: &str, layer: &Digest) {
    let root = store.root();
    let layers: Vec<_> = std::fs::read_dir(root.join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') || n.starts_with(".tmp-") || n.starts_with(".trash-"))
        .collect();
    assert!(layers.is_empty(), "layer or staging dirs left: {layers:?}");
    assert!(
        !root.join("images/blobs/sha256").join(layer.hex()).exists(),
        "the bomb's blob was kept"
    );
    // The store was empty: no blob of the image (manifest, config) stays either.
    let blobs = tree(&root.join("images/blobs"));
    assert!(
        blobs.iter().all(|p| p.components().count() == 1),
        "blobs kept: {blobs:?}"
    );
    assert_eq!(
        std::fs::read_dir(root.join("images/ingest"))
            .unwrap()
            .count(),
        0,
        "ingest files left"
    );
    assert!(
        store.inspect(reference).is_err(),
        "an image record was left"
    );
    let report = store.check(false).unwrap();
    assert!(report.consistent(), "{report:?}");
    assert!(
        report.stale_temp.is_empty() && report.half_layers.is_empty(),
        "{report:?}"
    );
}

async fn refused_then_a_good_pull_works(reference: &str, layer: &Digest) {
    let fs = SmallFs::new("64m");
    let store = ImageStore::open(&fs.root()).unwrap();
    let before = fs.used();
    let r = Reference::parse(reference).unwrap();
    let started = std::time::Instant::now();
    match store.pull(&r, None, |_| {}).await {
        Err(ImageError::BadLayer { layer: l, reason }) => {
            assert_eq!(l, layer.to_string(), "the error names the layer");
            assert!(reason.contains("bomb"), "{reason}");
        }
        other => panic!("{reference}: expected a BadLayer refusal, got {other:?}"),
    }
    eprintln!("{reference}: refused in {:?}", started.elapsed());
    assert_nothing_of(&store, reference, layer);
    let after = fs.used();
    assert!(
        after <= before + (64 << 10),
        "the store uses {after} bytes after the refusal, {before} before: {:?}",
        tree(&fs.root())
    );

    // The same store takes a good image afterwards.
    let good = crate::fixtures::fixtures().multi_ref.clone();
    store
        .pull(&Reference::parse(&good).unwrap(), None, |_| {})
        .await
        .unwrap();
    assert!(store.inspect(&good).is_ok());
    assert!(store.check(false).unwrap().consistent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_layer_is_refused_before_it_fills_the_disk() {
    if !crate::support::require_root() {
        return;
    }
    let b = bombs();
    refused_then_a_good_pull_works(&b.gzip_ref, &b.gzip_layer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sparse_entry_declaring_64_gib_of_holes_is_refused_before_it_fills_the_disk() {
    if !crate::support::require_root() {
        return;
    }
    let b = bombs();
    refused_then_a_good_pull_works(&b.sparse_ref, &b.sparse_layer).await;
}

#[test]
fn berth_pull_of_a_bomb_says_which_layer_and_why_and_leaves_nothing() {
    if !crate::support::require_root() {
        return;
    }
    let b = bombs();
    let fs = SmallFs::new("64m");
    let root = fs.root();
    for (reference, layer) in [
        (&b.gzip_ref, &b.gzip_layer),
        (&b.sparse_ref, &b.sparse_layer),
    ] {
        let out = berth(&root, &["pull", reference]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{reference} pulled");
        assert!(
            err.contains(&layer.to_string()) && err.contains("bomb") && err.contains("refused"),
            "unclear error for {reference}: {err}"
        );
        assert!(
            !err.contains("No space left"),
            "{reference} filled the disk: {err}"
        );
        eprintln!("berth pull {reference}: {}", err.trim());
        let check = berth(&root, &["system", "check"]);
        let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
        assert!(check.status.success(), "{report:#}");
        for k in [
            "stale_temp",
            "half_layers",
            "corrupt_blobs",
            "missing_blobs",
        ] {
            assert_eq!(report[k].as_array().map(Vec::len), Some(0), "{report:#}");
        }
        let blobs = tree(&root.join("images/blobs"));
        assert!(
            blobs.iter().all(|p| p.components().count() == 1),
            "blobs kept: {blobs:?}"
        );
        let images = berth(&root, &["images"]);
        assert!(
            !String::from_utf8_lossy(&images.stdout).contains("bomb"),
            "the bomb is listed"
        );
    }
    let good = crate::fixtures::fixtures().multi_ref.clone();
    let out = berth(&root, &["pull", &good]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_layer_pulled_beside_a_bomb_is_not_kept() {
    if !crate::support::require_root() {
        return;
    }
    let b = bombs();
    refused_then_a_good_pull_works(&b.mixed_ref, &b.sparse_layer).await;
}
