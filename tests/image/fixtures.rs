//! The test images, built and pushed once per test run.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::json;

use crate::registry::{
    Built, Comp, Entry, build_image, build_index, layer, name_in_layout, skopeo_push, tar_of,
};

pub struct Fixtures {
    pub reg: String,
    /// `berth-test/multi:v1`: gzip busybox layer, zstd layer with whiteouts, plain tar layer.
    pub multi: Built,
    pub multi_ref: String,
    /// `berth-test/index:v1`: an index with linux/amd64 (= multi) and linux/arm64.
    pub index_ref: String,
    pub index_digest: berth::image::Digest,
    pub arm: Built,
    /// `berth-test/v2s2:v1`: a Docker schema 2 copy of a gzip-only image.
    pub v2s2_ref: String,
    /// Hostile images: (reference, what it tries).
    pub evil: Vec<(String, &'static str)>,
    /// A good busybox layer under a hostile one.
    pub evil_multi: String,
}

/// Where hostile layers try to write.
pub const ESCAPE_TARGET: &str = "/var/tmp/berth-escape-target";

static FX: OnceLock<Fixtures> = OnceLock::new();

pub fn fixtures() -> &'static Fixtures {
    FX.get_or_init(build)
}

fn base_layer() -> crate::registry::Layer {
    let bb = crate::registry::busybox();
    layer(
        tar_of(&[
            Entry::Dir("bin/"),
            Entry::HostFile("bin/busybox", &bb, 0o755),
            Entry::Symlink("bin/sh", "busybox"),
            Entry::Symlink("bin/cat", "busybox"),
            Entry::Symlink("bin/ls", "busybox"),
            Entry::Dir("etc/"),
            Entry::File("etc/base", b"base layer\n", 0o644),
            Entry::File("etc/gone", b"deleted by layer 2\n", 0o644),
            Entry::Dir("var/"),
            Entry::Dir("var/cache/"),
            Entry::File("var/cache/a", b"a\n", 0o644),
            Entry::File("var/cache/b", b"b\n", 0o644),
            Entry::Dir("tmp/"),
        ]),
        Comp::Gzip,
    )
}

fn build() -> Fixtures {
    let reg = crate::registry::require_registry();
    let tmp = crate::registry::tempdir();
    let lay = tmp.path().join("layout");
    let run = json!({
        "Env": ["PATH=/bin", "GREETING=hello"],
        "Cmd": ["sh"],
        "Entrypoint": ["/bin/busybox"],
        "WorkingDir": "/etc",
        "ExposedPorts": {"8080/tcp": {}},
        "Labels": {"org.example.test": "multi"},
        "StopSignal": "SIGINT",
    });
    let l1 = base_layer();
    let l2 = layer(
        tar_of(&[
            Entry::Dir("etc/"),
            Entry::File("etc/.wh.gone", b"", 0o644),
            Entry::File("etc/new", b"from the zstd layer\n", 0o644),
            Entry::Dir("var/cache/"),
            Entry::File("var/cache/.wh..wh..opq", b"", 0o644),
            Entry::File("var/cache/c", b"c\n", 0o644),
        ]),
        Comp::Zstd,
    );
    let l3 = layer(
        tar_of(&[Entry::File("etc/plain", b"uncompressed layer\n", 0o600)]),
        Comp::None,
    );
    let multi = build_image(&lay, &[l1.clone(), l2, l3], "amd64", run.clone());
    name_in_layout(
        &lay,
        "multi",
        crate::registry::OCI_MANIFEST,
        &multi.manifest_digest,
        multi.manifest.len(),
    );
    let multi_ref = format!("{reg}/berth-test/multi:v1");
    skopeo_push(&lay, "multi", &multi_ref, &["--preserve-digests"]);

    let arm_layer = layer(
        tar_of(&[Entry::File("arch", b"arm64\n", 0o644)]),
        Comp::Gzip,
    );
    let arm = build_image(&lay, &[arm_layer], "arm64", run.clone());
    let (idx, index_digest) = build_index(
        &lay,
        &[(&multi, "linux", "amd64"), (&arm, "linux", "arm64")],
    );
    name_in_layout(
        &lay,
        "index",
        crate::registry::OCI_INDEX,
        &index_digest,
        idx.len(),
    );
    let index_ref = format!("{reg}/berth-test/index:v1");
    skopeo_push(&lay, "index", &index_ref, &["--all", "--preserve-digests"]);

    let simple = build_image(&lay, &[l1], "amd64", run);
    name_in_layout(
        &lay,
        "simple",
        crate::registry::OCI_MANIFEST,
        &simple.manifest_digest,
        simple.manifest.len(),
    );
    let v2s2_ref = format!("{reg}/berth-test/v2s2:v1");
    skopeo_push(&lay, "simple", &v2s2_ref, &["--format", "v2s2"]);

    let evil = build_evil(&reg, &lay);
    let bad = layer(
        tar_of(&[Entry::File(
            &format!("{ESCAPE_TARGET}/multi"),
            b"pwned",
            0o644,
        )]),
        Comp::Zstd,
    );
    let img = build_image(&lay, &[base_layer(), bad], "amd64", json!({}));
    name_in_layout(
        &lay,
        "evil-multi",
        crate::registry::OCI_MANIFEST,
        &img.manifest_digest,
        img.manifest.len(),
    );
    let evil_multi = format!("{reg}/berth-test/evil-multi:v1");
    skopeo_push(&lay, "evil-multi", &evil_multi, &["--preserve-digests"]);
    Fixtures {
        evil_multi,
        reg,
        multi,
        multi_ref,
        index_ref,
        index_digest,
        arm,
        v2s2_ref,
        evil,
    }
}

fn build_evil(reg: &str, lay: &Path) -> Vec<(String, &'static str)> {
    let t = ESCAPE_TARGET;
    let up = "../../../../../../../../../../..";
    let cases: Vec<(&str, &'static str, Vec<u8>)> = vec![
        (
            "dotdot",
            "'..' path",
            tar_of(&[Entry::File(&format!("{up}{t}/dotdot"), b"pwned", 0o644)]),
        ),
        (
            "absolute",
            "absolute path",
            tar_of(&[Entry::File(&format!("{t}/absolute"), b"pwned", 0o644)]),
        ),
        (
            "symlink-abs",
            "write through an absolute symlink made earlier",
            tar_of(&[
                Entry::Symlink("lnk", t),
                Entry::File("lnk/via-abs-symlink", b"pwned", 0o644),
            ]),
        ),
        (
            "symlink-rel",
            "write through a relative symlink made earlier",
            tar_of(&[
                Entry::Symlink("up", &format!("{up}{t}")),
                Entry::File("up/via-rel-symlink", b"pwned", 0o644),
            ]),
        ),
        (
            "symlink-dir",
            "directory through a symlink",
            tar_of(&[Entry::Symlink("d", t), Entry::Dir("d/newdir/")]),
        ),
        (
            "hardlink-abs",
            "hard link to an absolute path",
            tar_of(&[Entry::Hardlink("h", &format!("{t}/victim"))]),
        ),
        (
            "hardlink-dotdot",
            "hard link with '..'",
            tar_of(&[Entry::Hardlink("h", &format!("{up}{t}/victim"))]),
        ),
        (
            "hardlink-symlink",
            "hard link through a symlink",
            tar_of(&[Entry::Symlink("s", t), Entry::Hardlink("h", "s/victim")]),
        ),
    ];
    let mut out = Vec::new();
    for (name, what, tar) in cases {
        let img = build_image(lay, &[layer(tar, Comp::Gzip)], "amd64", json!({}));
        name_in_layout(
            lay,
            name,
            crate::registry::OCI_MANIFEST,
            &img.manifest_digest,
            img.manifest.len(),
        );
        let r = format!("{reg}/berth-test/evil-{name}:v1");
        skopeo_push(lay, name, &r, &["--preserve-digests"]);
        out.push((r, what));
    }
    out
}
