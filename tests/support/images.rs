//! The product tests' busybox image: busybox-static with every applet linked in /bin, plus
//! the usual top-level directories, built offline and pushed to the test registry once per
//! test binary. Needs `#[path = "../support/registry.rs"] mod registry;` beside `support`.

use crate::registry::{Comp, Entry, build_image, layer, name_in_layout, skopeo_push, tar_of};
use std::sync::OnceLock;

static BUSYBOX: OnceLock<String> = OnceLock::new();

/// `REGISTRY/berth-test/busybox:latest`, pushed on first use.
pub fn busybox_image() -> String {
    BUSYBOX
        .get_or_init(|| {
            let bb = crate::registry::busybox();
            let out = std::process::Command::new(&bb).arg("--list").output().expect("busybox --list");
            let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|a| !a.is_empty() && *a != "busybox")
                .map(|a| format!("bin/{a}"))
                .collect();
            let mut entries = vec![Entry::Dir("bin/"), Entry::HostFile("bin/busybox", &bb, 0o755)];
            for a in &applets {
                entries.push(Entry::Symlink(a, "busybox"));
            }
            for d in ["etc/", "tmp/", "root/", "home/", "var/", "proc/", "sys/", "dev/"] {
                entries.push(Entry::Dir(d));
            }
            entries.push(Entry::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644));
            entries.push(Entry::File("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644));
            let l = layer(tar_of(&entries), Comp::Gzip);
            let dir = crate::registry::tempdir();
            let layout = dir.path().join("layout");
            let run = serde_json::json!({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]});
            let built = build_image(&layout, &[l], "amd64", run);
            name_in_layout(&layout, "latest", "application/vnd.oci.image.manifest.v1+json", &built.manifest_digest, built.manifest.len());
            let reference = format!("{}/berth-test/busybox:latest", crate::registry::require_registry());
            skopeo_push(&layout, "latest", &reference, &[]);
            reference
        })
        .clone()
}
