//! The image commands end to end: the `berth` binary, its dispatcher and policy, the image
//! manager, a real registry.

use crate::support::berth_bin;
use std::process::{Command, Output};

struct Berth {
    root: tempfile::TempDir,
}

impl Berth {
    fn new() -> Self {
        Self {
            root: crate::registry::tempdir(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(berth_bin())
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[test]
fn pull_tag_push_save_load_rmi_through_the_cli() {
    let image = crate::images::busybox_image();
    let reg = crate::registry::registry();
    let b = Berth::new();

    let pulled = b.ok(&["pull", &image]);
    assert!(
        pulled.contains("Pull complete") || pulled.contains("Already exists"),
        "{pulled}"
    );
    let images = b.ok(&["images"]);
    assert!(images.contains("berth-test/busybox:latest"), "{images}");

    // inspect and history read the config
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", &image])).unwrap();
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "sh");
    assert!(b.ok(&["history", &image]).lines().count() >= 2);

    // tag, push under another name, forget both, pull the new name back
    let other = format!("{reg}/berth-test/cli-copy:v1");
    b.ok(&["tag", &image, &other]);
    assert!(b.ok(&["push", &other]).contains("digest: sha256:"));
    let rmi = b.ok(&["rmi", &image, &other]);
    assert!(
        rmi.contains("Untagged") && rmi.contains("Deleted: sha256:"),
        "{rmi}"
    );
    assert!(!b.ok(&["images"]).contains("busybox"));
    b.ok(&["pull", &other]);
    assert!(b.ok(&["images"]).contains("cli-copy:v1"));

    // save, remove, load back
    let archive = b.root.path().join("out.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), &other]);
    b.ok(&["rmi", &other]);
    let loaded = b.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("cli-copy:v1"), "{loaded}");
    assert!(b.ok(&["images"]).contains("cli-copy:v1"));
}

#[test]
fn bad_references_and_missing_images_are_clear_errors() {
    let b = Berth::new();
    let out = b.run(&["pull", "UPPER/Case:bad tag"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid argument"), "{err}");
    let out = b.run(&["rmi", "nosuch:latest"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image"));
}

#[test]
fn a_pull_the_policy_denies_writes_nothing() {
    let image = crate::images::busybox_image();
    let b = Berth::new();
    let policy = b.root.path().join("p.toml");
    std::fs::write(&policy, "[[rule]]\naction = \"image.pull\"\ndecision = \"deny\"\nreason = \"no pulls here\"\n[[rule]]\naction = \"*\"\ndecision = \"allow\"\n").unwrap();
    let out = b.run(&["--policy", policy.to_str().unwrap(), "pull", &image]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pulls here"));
    let blobs = b.root.path().join("images/blobs/sha256");
    let n = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(n, 0, "a denied pull stored blobs");
}
