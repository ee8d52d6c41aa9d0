//! `berth build`: real images from Dockerfiles (RUN in real containers of the engine), the
//! layer cache, errors that name the place, and the result pushed to the local registry and
//! read back by skopeo.

#[path = "../support/images.rs"]
mod images;
#[path = "../support/registry.rs"]
mod registry;
#[path = "../support/mod.rs"]
mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output};

struct Berth {
    root: tempfile::TempDir,
    ctx: PathBuf,
    _ctx_dir: tempfile::TempDir,
    policy: Option<PathBuf>,
}

impl Berth {
    fn new() -> Self {
        let ctx_dir = registry::tempdir();
        Self {
            root: registry::tempdir(),
            ctx: ctx_dir.path().to_path_buf(),
            _ctx_dir: ctx_dir,
            policy: None,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(support::berth_bin());
        c.arg("--root").arg(self.root.path());
        if let Some(p) = &self.policy {
            c.arg("--policy").arg(p);
        }
        c.args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "berth {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn write(&self, rel: &str, data: &str) {
        let p = self.ctx.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    fn build(&self, extra: &[&str]) -> String {
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        let ctx = self.ctx.to_str().unwrap().to_owned();
        args.push(&ctx);
        self.ok(&args)
    }

    /// The image's raw config and its layers' entry names, read from the store on disk.
    fn image_files(&self, image: &str) -> (serde_json::Value, Vec<Vec<String>>) {
        let layout = self.root.path().join("images");
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let want = if image.contains('/') {
            image.to_owned()
        } else {
            format!("docker.io/library/{image}")
        };
        let m = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == want.as_str())
            .unwrap_or_else(|| panic!("{want} not in {index}"));
        let blob = |d: &serde_json::Value| -> Vec<u8> {
            let d = d
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap()
                .to_owned();
            std::fs::read(layout.join("blobs/sha256").join(d)).unwrap()
        };
        let manifest: serde_json::Value = serde_json::from_slice(&blob(&m["digest"])).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
        let layers = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let raw = blob(&l["digest"]);
                let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&raw[..]));
                ar.entries()
                    .unwrap()
                    .map(|e| {
                        let mut e = e.unwrap();
                        let p = e.path().unwrap().to_string_lossy().into_owned();
                        let mut sink = Vec::new();
                        e.read_to_end(&mut sink).unwrap();
                        p
                    })
                    .collect()
            })
            .collect();
        (config, layers)
    }

    fn id_of(&self, image: &str) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["image", "inspect", image])).unwrap();
        v[0]["Id"].as_str().unwrap().to_owned()
    }

    fn assert_no_containers_left(&self) {
        let ps = self.ok(&["ps", "-a", "-q"]);
        assert!(
            ps.trim().is_empty(),
            "build containers were left behind: {ps}"
        );
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

const MULTI_STAGE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE
FROM ${BASE} AS builder
ARG GREETING=hello
ENV APP_HOME=/app \
    NAME="berth build"
# comments and continuations are fine
WORKDIR ${APP_HOME}/src
COPY app/*.txt ./
COPY --chown=65534:65534 data /data/
RUN echo "$GREETING from $NAME" > made.txt \
 && ls -ln /data | grep -c 65534 > owners.txt

FROM ${BASE}
COPY --from=builder /app/src /app/src
COPY --from=builder /data/inner.txt /opt/
RUN rm /etc/group && mkdir -p /work && chown nobody /work
# One ENV sees the environment from before it (Docker's rule): Y does not see this X.
ENV X=${X:-one} Y="$X-two"
ENV Z="$X-three"
WORKDIR /app/src
USER nobody
RUN id -u > /work/uid && pwd > /work/pwd
LABEL org.example.built="by berth"
EXPOSE 8080
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD true
CMD ["sh", "-c", "id -u; pwd; echo $X $Y $Z; cat made.txt a.txt owners.txt /opt/inner.txt /work/uid /work/pwd; ls /etc/group 2>/dev/null || echo group-gone; ls /app/src"]
"#;

#[test]
fn multi_stage_build_with_copy_from_whiteouts_env_workdir_user_runs() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let b = Berth::new();
    b.ok(&["pull", &image]);
    b.write("Dockerfile", MULTI_STAGE);
    b.write("app/a.txt", "file a\n");
    b.write("app/b.txt", "file b\n");
    b.write("app/skip.md", "not copied\n");
    b.write("data/inner.txt", "inner\n");
    let base = format!("BASE={image}");
    let out = b.build(&["-t", "multi:1", "--build-arg", &base]);
    assert!(out.contains("Step 1/"), "{out}");
    assert!(out.contains("Successfully built"), "{out}");
    assert!(out.contains("Successfully tagged multi:1"), "{out}");
    b.assert_no_containers_left();

    let run = b.ok(&["run", "--rm", "multi:1"]);
    assert_eq!(
        run,
        "65534\n/app/src\none -two one-three\nhello from berth build\nfile a\n1\ninner\n65534\n/app/src\ngroup-gone\na.txt\nb.txt\nmade.txt\nowners.txt\n",
        "{run}"
    );

    // The RUN that deleted a file of the base carries a whiteout for it; metadata landed in
    // the config; every step is in the history.
    let (config, layers) = b.image_files("multi:1");
    assert!(
        layers
            .iter()
            .any(|l| l.iter().any(|p| p == "etc/.wh.group")),
        "no whiteout for /etc/group in {layers:?}"
    );
    let c = &config["config"];
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["WorkingDir"], "/app/src");
    assert_eq!(c["Labels"]["org.example.built"], "by berth");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object(), "{c}");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "Z=one-three"),
        "{c}"
    );
    let history = config["history"].as_array().unwrap();
    assert_eq!(
        history.iter().filter(|h| h["empty_layer"] != true).count(),
        config["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
    assert!(
        history
            .iter()
            .any(|h| h["created_by"].as_str().unwrap().contains("rm /etc/group")),
        "{history:?}"
    );
}

#[test]
fn rebuild_hits_the_cache_and_a_changed_file_reruns_from_its_copy() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let b = Berth::new();
    b.ok(&["pull", &image]);
    b.write(
        "Dockerfile",
        &format!(
            "FROM {image}\nENV A=1\nWORKDIR /data\nCOPY first.txt /first.txt\nRUN cat /first.txt > /copy1\nCOPY second.txt /second.txt\nRUN cat /second.txt > /copy2\nCMD [\"cat\", \"/copy1\", \"/copy2\"]\n"
        ),
    );
    b.write(".dockerignore", "*.log\n");
    b.write("first.txt", "first\n");
    b.write("second.txt", "second v1\n");
    b.write("noise.log", "ignored\n");
    let first = b.build(&["-t", "cached:1", "-q"]);
    let id1 = first.trim().to_owned();
    assert!(id1.starts_with("sha256:"), "{first}");

    // No change (an ignored file changing is no change): every step after FROM is cached,
    // and the image is the same.
    b.write("noise.log", "ignored, but different\n");
    let second = b.build(&["-t", "cached:2"]);
    assert_eq!(count(&second, "Using cache"), 7, "{second}");
    assert!(!second.contains("Running in"), "{second}");
    assert_eq!(b.id_of("cached:2"), id1);

    // The second COPY's file changes: the steps before it are cached, it and what follows
    // run again.
    b.write("second.txt", "second v2\n");
    let third = b.build(&["-t", "cached:3"]);
    assert_eq!(count(&third, "Using cache"), 4, "{third}");
    assert_eq!(count(&third, "Running in"), 1, "{third}");
    let step6 = third.find("Step 6/8 : COPY second.txt").unwrap();
    assert!(!third[step6..].contains("Using cache"), "{third}");
    assert_eq!(b.ok(&["run", "--rm", "cached:3"]), "first\nsecond v2\n");

    // --no-cache runs everything again.
    let fresh = b.build(&["--no-cache", "-t", "cached:4"]);
    assert_eq!(count(&fresh, "Using cache"), 0, "{fresh}");
    assert_eq!(count(&fresh, "Running in"), 2, "{fresh}");
    b.assert_no_containers_left();
}

#[test]
fn scratch_add_archive_shell_entrypoint_and_target() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    // The base is not pulled first: the build pulls it.
    let b = Berth::new();
    // A local tar archive that ADD unpacks.
    let mut ar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    ar.append_data(&mut h, "pkg/readme", &b"inside"[..])
        .unwrap();
    std::fs::write(b.ctx.join("pkg.tar"), ar.into_inner().unwrap()).unwrap();
    b.write(
        "Dockerfile",
        &format!(
            "FROM {image} AS tools\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nRUN echo tool > /tool.txt\n\nFROM scratch AS final\nCOPY --from=tools /bin/busybox /bin/busybox\nCOPY --from=tools /tool.txt /\nADD pkg.tar /srv/\nENTRYPOINT [\"/bin/busybox\", \"cat\"]\nCMD [\"/srv/pkg/readme\", \"/tool.txt\"]\n\nFROM {image} AS unused\nRUN exit 7\n"
        ),
    );
    let out = b.build(&["--target", "final", "-t", "scratchy:1"]);
    assert!(out.contains("Pulling "), "{out}");
    assert!(
        !out.contains("exit 7"),
        "a stage after the target was built: {out}"
    );
    assert_eq!(b.ok(&["run", "--rm", "scratchy:1"]), "insidetool\n");
    let (config, layers) = b.image_files("scratchy:1");
    assert_eq!(layers.len(), 3, "{layers:?}");
    assert!(
        layers[2].iter().any(|p| p == "srv/pkg/readme"),
        "{layers:?}"
    );
    assert!(config["config"]["Env"].is_null(), "{config}");
}

#[test]
fn bad_dockerfiles_give_file_line_errors_and_leave_nothing_behind() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let b = Berth::new();
    b.ok(&["pull", &image]);
    let ctx = b.ctx.to_str().unwrap().to_owned();
    let cases = [
        (
            format!("FROM {image}\n\nFROBNICATE x\n"),
            "Dockerfile:3: FROBNICATE: unknown instruction",
        ),
        (
            format!("FROM {image}\nCOPY missing.txt /\n"),
            "Dockerfile:2: COPY: missing.txt: not found",
        ),
        (
            format!("FROM {image}\nRUN true\nRUN echo about to fail \\\n  && exit 3\n"),
            "Dockerfile:3: RUN: the command",
        ),
        (
            format!("FROM {image}\nENV A=\"${{B:?must be set}}\"\n"),
            "Dockerfile:2: ENV: B: must be set",
        ),
        (
            format!("FROM {image}\nENV A=${{B:?must be set}}\n"),
            "Dockerfile:2: ENV: \"be\" is not KEY=value",
        ),
        ("RUN true\n".to_owned(), "Dockerfile:1: RUN: no FROM"),
        (
            format!("FROM {}/berth-test/no-such-base:1\n", registry::registry()),
            "Dockerfile:1: FROM: pulling",
        ),
        (
            format!("FROM {image}\nUSER nosuchuser\nRUN true\n"),
            "Dockerfile:3: RUN: unable to find user nosuchuser",
        ),
    ];
    for (df, want) in cases {
        b.write("Dockerfile", &df);
        let err = b.fails(&["build", &ctx]);
        assert!(err.contains(want), "for:\n{df}\nwanted {want:?} in: {err}");
    }
    let err = b.fails(&["build", "-f", "Nope.dockerfile", &ctx]);
    assert!(err.contains("Nope.dockerfile"), "{err}");
    let err = b.fails(&["build", "--target", "nostage", &ctx]);
    assert!(err.contains("nostage"), "{err}");
    b.assert_no_containers_left();
    let tmp = b.root.path().join("build-tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "snapshot dirs left in {tmp:?}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn run_steps_are_asked_of_the_policy_as_container_creates() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let mut b = Berth::new();
    b.ok(&["pull", &image]);
    let policy = b.ctx.join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\naction = \"container.create\"\ndecision = \"deny\"\nreason = \"no containers here\"\n\n[[rule]]\naction = \"*\"\ndecision = \"allow\"\n",
    )
    .unwrap();
    b.policy = Some(policy);
    b.write("Dockerfile", &format!("FROM {image}\nCOPY . /ctx/\n"));
    b.write(".dockerignore", "policy.toml\nsub/*.tmp\n");
    b.write("sub/keep.txt", "keep\n");
    b.write("sub/drop.tmp", "drop\n");
    let ctx = b.ctx.to_str().unwrap().to_owned();
    b.ok(&["build", "-t", "norun:1", &ctx]);
    // A build without RUN needs no container; `COPY .` honours .dockerignore.
    let (_, layers) = b.image_files("norun:1");
    let top = layers.last().unwrap();
    for want in ["ctx/Dockerfile", "ctx/sub/keep.txt"] {
        assert!(top.iter().any(|p| p == want), "{want} missing in {top:?}");
    }
    assert!(
        !top.iter()
            .any(|p| p.contains("policy.toml") || p.contains("drop.tmp")),
        "{top:?}"
    );
    b.write("Dockerfile", &format!("FROM {image}\nRUN touch /x\n"));
    let err = b.fails(&["build", "-t", "withrun:1", &ctx]);
    assert!(err.contains("no containers here"), "{err}");
    b.assert_no_containers_left();
}

#[test]
fn built_image_pushes_to_the_registry_and_skopeo_reads_it() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let reg = registry::require_registry();
    let b = Berth::new();
    b.ok(&["pull", &image]);
    b.write(
        "Dockerfile",
        &format!("FROM {image}\nRUN echo pushed > /pushed.txt && rm /etc/passwd\nENV PUSHED=yes\n"),
    );
    let name = format!("{reg}/berth-test/built:v1");
    b.build(&["-t", &name]);
    assert!(b.ok(&["push", &name]).contains("digest: sha256:"));

    let dir = registry::tempdir();
    let dest = format!("oci:{}:got", dir.path().display());
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &dest,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("skopeo")
        .args(["inspect", "--config", &dest])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "PUSHED=yes"),
        "{config}"
    );
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    // And it comes back through berth from the registry, file and whiteout applied.
    let c = Berth::new();
    c.ok(&["pull", &name]);
    assert_eq!(
        c.ok(&[
            "run",
            "--rm",
            &name,
            "sh",
            "-c",
            "cat /pushed.txt; ls /etc/passwd 2>/dev/null || echo gone"
        ]),
        "pushed\ngone\n"
    );
}
