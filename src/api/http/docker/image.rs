//! Images: list items, inspect, history, rmi, prune, and the JSONMessage progress streams of
//! pull and push (from the engine's `Transfer` events).

use super::{Filters, labels_json, rfc3339_secs};
use crate::api::{Digest, ImageDeleted, ImageSummary, TransferPhase};
use serde_json::{Value, json};
use std::collections::HashSet;

/// The reference to pull from `fromImage` and `tag` (`tag` is ignored when the image already
/// names a tag or a digest).
pub(crate) fn pull_reference(from_image: &str, tag: Option<&str>) -> String {
    let last = from_image.rsplit('/').next().unwrap_or(from_image);
    match tag.filter(|t| !t.is_empty()) {
        _ if from_image.contains('@') || last.contains(':') => from_image.to_owned(),
        // `docker pull x@sha256:…` sends the digest as the tag.
        Some(t) if t.starts_with("sha256:") => format!("{from_image}@{t}"),
        Some(t) => format!("{from_image}:{t}"),
        None => format!("{from_image}:latest"),
    }
}

/// A reference in one spelling, so `busybox`, `docker.io/library/busybox:latest` and
/// `library/busybox` compare equal.
pub(crate) fn normalize_ref(r: &str) -> String {
    let mut s = r.strip_prefix("docker.io/").unwrap_or(r).to_owned();
    if let Some(rest) = s.strip_prefix("index.docker.io/") {
        s = rest.to_owned();
    }
    if let Some(rest) = s.strip_prefix("library/") {
        s = rest.to_owned();
    }
    let last = s.rsplit('/').next().unwrap_or(&s);
    if !last.contains(':') && !s.contains('@') {
        s.push_str(":latest");
    }
    s
}

/// The repository part of a reference, as Docker prints it in "Pulling from …".
fn repo_path(r: &str) -> (String, String) {
    let (name, tag) = match r.rsplit_once('@') {
        Some((n, d)) => (n.to_owned(), d.to_owned()),
        None => {
            let last_slash = r.rfind('/').map_or(0, |i| i + 1);
            match r[last_slash..].rsplit_once(':') {
                Some((_, t)) => (r[..r.len() - t.len() - 1].to_owned(), t.to_owned()),
                None => (r.to_owned(), "latest".to_owned()),
            }
        }
    };
    let first = name.split('/').next().unwrap_or_default();
    let path = if name.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        name[first.len() + 1..].to_owned()
    } else if name.contains('/') {
        name.clone()
    } else {
        format!("library/{name}")
    };
    (path, tag)
}

fn short_layer(d: &Digest) -> String {
    d.short().to_owned()
}

/// Go's `units.HumanSize`: decimal units, about four significant digits.
pub(crate) fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // "%.4g": four significant digits, trailing zeros dropped.
    let int_digits = (v.trunc() as u64).to_string().len();
    let s = format!("{v:.*}", 4usize.saturating_sub(int_digits));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// The progress bar text of a JSONMessage (`[=====>      ]  1.2MB/3.4MB`).
pub(crate) fn progress_bar(current: u64, total: Option<u64>) -> String {
    match total.filter(|t| *t > 0) {
        None => human_size(current),
        Some(t) => {
            const WIDTH: u64 = 50;
            let filled = (current.min(t) * WIDTH / t) as usize;
            let bar = if filled as u64 >= WIDTH {
                "=".repeat(WIDTH as usize)
            } else {
                format!(
                    "{}>{}",
                    "=".repeat(filled),
                    " ".repeat(WIDTH as usize - filled - 1)
                )
            };
            format!("[{bar}] {:>8}/{}", human_size(current), human_size(t))
        }
    }
}

fn layer_msg(status: &str, id: &str) -> Value {
    json!({ "status": status, "progressDetail": {}, "id": id })
}

fn progress_msg(status: &str, id: &str, current: u64, total: Option<u64>) -> Value {
    let mut detail = json!({ "current": current });
    if let Some(t) = total {
        detail["total"] = json!(t);
    }
    json!({
        "status": status,
        "progressDetail": detail,
        "progress": progress_bar(current, total),
        "id": id,
    })
}

/// The JSONMessage stream of one pull.
#[derive(Debug)]
pub(crate) struct PullProgress {
    pub reference: String,
    seen: HashSet<String>,
    /// Whether any layer was fetched (else the image was up to date).
    fetched: bool,
}

impl PullProgress {
    pub fn new(reference: &str) -> Self {
        Self {
            reference: reference.to_owned(),
            seen: HashSet::new(),
            fetched: false,
        }
    }

    /// Whether a `Transfer` event of `reference` belongs to this pull.
    pub fn is_mine(&self, reference: &str) -> bool {
        normalize_ref(reference) == normalize_ref(&self.reference)
    }

    pub fn start(&self) -> Value {
        let (path, tag) = repo_path(&self.reference);
        json!({ "status": format!("Pulling from {path}"), "id": tag })
    }

    pub fn on_transfer(
        &mut self,
        layer: &Digest,
        phase: TransferPhase,
        current: u64,
        total: Option<u64>,
    ) -> Vec<Value> {
        let id = short_layer(layer);
        let mut out = Vec::new();
        if self.seen.insert(id.clone()) && phase != TransferPhase::AlreadyExists {
            out.push(layer_msg("Pulling fs layer", &id));
        }
        match phase {
            TransferPhase::Waiting => out.push(layer_msg("Waiting", &id)),
            TransferPhase::Downloading => {
                self.fetched = true;
                out.push(progress_msg("Downloading", &id, current, total));
            }
            TransferPhase::Verifying => {
                self.fetched = true;
                out.push(layer_msg("Verifying Checksum", &id));
                out.push(layer_msg("Download complete", &id));
            }
            TransferPhase::Extracting => {
                self.fetched = true;
                out.push(progress_msg("Extracting", &id, current, total));
            }
            TransferPhase::Complete => {
                self.fetched = true;
                out.push(layer_msg("Pull complete", &id));
            }
            TransferPhase::AlreadyExists => out.push(layer_msg("Already exists", &id)),
            TransferPhase::Pushing => {}
        }
        out
    }

    /// The closing lines. (Docker also prints the manifest digest; the engine's pull answers
    /// with the image id only, so that line is left out rather than made up.)
    pub fn finish(&self) -> Vec<Value> {
        let what = if self.fetched {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        vec![json!({ "status": format!("Status: {what} {}", self.reference) })]
    }
}

/// The JSONMessage stream of one push.
#[derive(Debug)]
pub(crate) struct PushProgress {
    pub reference: String,
    seen: HashSet<String>,
}

impl PushProgress {
    pub fn new(reference: &str) -> Self {
        Self {
            reference: reference.to_owned(),
            seen: HashSet::new(),
        }
    }

    pub fn is_mine(&self, reference: &str) -> bool {
        normalize_ref(reference) == normalize_ref(&self.reference)
    }

    pub fn start(&self) -> Value {
        let name = match self.reference.rsplit_once('@') {
            Some((n, _)) => n,
            None => {
                let last_slash = self.reference.rfind('/').map_or(0, |i| i + 1);
                match self.reference[last_slash..].rfind(':') {
                    Some(i) => &self.reference[..last_slash + i],
                    None => &self.reference,
                }
            }
        };
        json!({ "status": format!("The push refers to repository [{name}]") })
    }

    pub fn on_transfer(
        &mut self,
        layer: &Digest,
        phase: TransferPhase,
        current: u64,
        total: Option<u64>,
    ) -> Vec<Value> {
        let id = short_layer(layer);
        let mut out = Vec::new();
        if self.seen.insert(id.clone()) {
            out.push(layer_msg("Preparing", &id));
        }
        match phase {
            TransferPhase::Waiting => out.push(layer_msg("Waiting", &id)),
            TransferPhase::Pushing | TransferPhase::Downloading => {
                out.push(progress_msg("Pushing", &id, current, total))
            }
            TransferPhase::Complete => out.push(layer_msg("Pushed", &id)),
            TransferPhase::AlreadyExists => out.push(layer_msg("Layer already exists", &id)),
            TransferPhase::Verifying | TransferPhase::Extracting => {}
        }
        out
    }

    pub fn finish(&self, digest: &Digest, size: Option<u64>) -> Vec<Value> {
        let (_, tag) = repo_path(&self.reference);
        let mut status = format!("{tag}: digest: {digest}");
        if let Some(s) = size {
            status.push_str(&format!(" size: {s}"));
        }
        vec![
            json!({ "status": status }),
            json!({ "progressDetail": {}, "aux": { "Tag": tag, "Digest": digest, "Size": size.unwrap_or(0) } }),
        ]
    }
}

/// A failure after the 200 of a progress stream: the CLI prints `error` and exits non-zero.
pub(crate) fn stream_error(message: &str) -> Value {
    json!({ "errorDetail": { "message": message }, "error": message })
}

/// One item of `GET /images/json`.
pub(crate) fn list_item(i: &ImageSummary, with_virtual_size: bool) -> Value {
    let mut v = json!({
        "Id": i.id,
        "ParentId": "",
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Created": i.created.unwrap_or(0),
        "Size": i.size,
        "SharedSize": -1,
        "Labels": {},
        "Containers": i.containers,
    });
    if with_virtual_size {
        v["VirtualSize"] = json!(i.size);
    }
    v
}

pub(crate) const LIST_FILTERS: &[&str] = &["dangling", "reference"];

/// Whether an image passes `docker images --filter`s (`dangling`, `reference` with `*`).
pub(crate) fn list_matches(i: &ImageSummary, f: &Filters) -> Result<bool, String> {
    f.only(LIST_FILTERS)?;
    let dangling = i.repo_tags.is_empty();
    for d in f.get("dangling") {
        if !matches!(d.as_str(), "true" | "false" | "1" | "0") {
            return Err(format!("invalid filter 'dangling={d}'"));
        }
    }
    Ok(f.any("dangling", |d| matches!(d, "true" | "1") == dangling)
        && f.any("reference", |pat| {
            i.repo_tags.iter().any(|t| {
                let repo = t.rsplit_once(':').map_or(t.as_str(), |(r, _)| r);
                glob(pat, t) || glob(pat, repo) || glob(pat, &normalize_ref(t))
            })
        }))
}

/// `*` matches within a path component, as Docker's reference filter does.
fn glob(pat: &str, s: &str) -> bool {
    let Some((head, tail)) = pat.split_once('*') else {
        return pat == s;
    };
    let Some(rest) = s.strip_prefix(head) else {
        return false;
    };
    (0..=rest.len())
        .filter(|&i| rest.is_char_boundary(i) && !rest[..i].contains('/'))
        .any(|i| glob(tail, &rest[i..]))
}

pub(crate) fn removed(items: &[ImageDeleted]) -> Value {
    items
        .iter()
        .map(|d| match d {
            ImageDeleted::Untagged(r) => json!({ "Untagged": r }),
            ImageDeleted::Deleted(id) => json!({ "Deleted": id }),
        })
        .collect()
}

/// What `ImageInspect` is expected to answer, unless it answers in Docker's shape already (an
/// object with `Id`): the summary and the image's OCI config JSON.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ImageDetails {
    pub summary: ImageSummary,
    /// The OCI image configuration (`architecture`, `os`, `config`, `rootfs`, `history`).
    pub config: Value,
}

pub(crate) fn inspect(v: Value) -> Result<Value, String> {
    if v.get("Id").is_some_and(Value::is_string) {
        return Ok(v);
    }
    let d: ImageDetails = serde_json::from_value(v)
        .map_err(|e| format!("the engine's image record is not understood: {e}"))?;
    let oci = &d.config;
    let cfg = oci.get("config").cloned().unwrap_or_else(|| json!({}));
    let pick = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
    let labels = match cfg.get("Labels") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => labels_json(&[]),
    };
    Ok(json!({
        "Id": d.summary.id,
        "RepoTags": d.summary.repo_tags,
        "RepoDigests": d.summary.repo_digests,
        "Parent": "",
        "Comment": "",
        "Created": oci.get("created").cloned().unwrap_or_else(|| json!(rfc3339_secs(d.summary.created))),
        "DockerVersion": "",
        "Author": oci.get("author").cloned().unwrap_or(json!("")),
        "Config": {
            "Hostname": "", "Domainname": "",
            "User": pick("User").as_str().unwrap_or_default(),
            "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
            "ExposedPorts": pick("ExposedPorts"),
            "Tty": false, "OpenStdin": false, "StdinOnce": false,
            "Env": pick("Env"),
            "Cmd": pick("Cmd"),
            "Image": "",
            "Volumes": pick("Volumes"),
            "WorkingDir": pick("WorkingDir").as_str().unwrap_or_default(),
            "Entrypoint": pick("Entrypoint"),
            "OnBuild": null,
            "Labels": labels,
            "StopSignal": pick("StopSignal"),
        },
        "Architecture": oci.get("architecture").cloned().unwrap_or(json!("")),
        "Variant": oci.get("variant").cloned().unwrap_or(Value::Null),
        "Os": oci.get("os").cloned().unwrap_or(json!("linux")),
        "Size": d.summary.size,
        "GraphDriver": { "Name": "overlay", "Data": null },
        "RootFS": {
            "Type": oci.pointer("/rootfs/type").cloned().unwrap_or(json!("layers")),
            "Layers": oci.pointer("/rootfs/diff_ids").cloned().unwrap_or(json!([])),
        },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    }))
}

/// `GET /images/{name}/history` from the engine's answer: Docker's items pass through; OCI
/// history entries (oldest first) are mapped, newest first.
pub(crate) fn history(v: Value) -> Result<Value, String> {
    let Value::Array(items) = v else {
        return Err("the engine's image history is not a list".into());
    };
    if items.iter().all(|i| i.get("CreatedBy").is_some()) {
        return Ok(Value::Array(items));
    }
    let mut out: Vec<Value> = items
        .iter()
        .map(|h| {
            let created = h
                .get("created")
                .and_then(Value::as_str)
                .and_then(super::parse_rfc3339)
                .unwrap_or(0);
            json!({
                "Id": "<missing>",
                "Created": created,
                "CreatedBy": h.get("created_by").cloned().unwrap_or(json!("")),
                "Tags": null,
                "Size": h.get("size").cloned().unwrap_or(json!(0)),
                "Comment": h.get("comment").cloned().unwrap_or(json!("")),
            })
        })
        .collect();
    out.reverse();
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_from_the_query() {
        assert_eq!(
            pull_reference("docker.io/library/busybox", Some("latest")),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            pull_reference("127.0.0.1:5000/busybox", Some("1.36")),
            "127.0.0.1:5000/busybox:1.36"
        );
        assert_eq!(
            pull_reference("127.0.0.1:5000/busybox", None),
            "127.0.0.1:5000/busybox:latest"
        );
        assert_eq!(pull_reference("busybox:1", Some("latest")), "busybox:1");
        assert_eq!(
            pull_reference("busybox", Some("sha256:abcd")),
            "busybox@sha256:abcd"
        );
        assert_eq!(
            normalize_ref("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(normalize_ref("busybox"), "busybox:latest");
        assert_eq!(normalize_ref("127.0.0.1:5000/x"), "127.0.0.1:5000/x:latest");
    }

    fn d(s: &str) -> Digest {
        Digest::from(format!("sha256:{s}").as_str())
    }

    #[test]
    fn pull_progress_reads_like_dockers() {
        let mut p = PullProgress::new("127.0.0.1:5000/busybox:latest");
        assert!(p.is_mine("127.0.0.1:5000/busybox"));
        assert!(!p.is_mine("127.0.0.1:5000/alpine"));
        assert_eq!(
            p.start(),
            json!({"status":"Pulling from busybox","id":"latest"})
        );
        let layer = d("aaaaaaaaaaaabbbb");
        let msgs = p.on_transfer(&layer, TransferPhase::Downloading, 500_000, Some(1_000_000));
        assert_eq!(
            msgs[0],
            json!({"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"})
        );
        assert_eq!(msgs[1]["status"], "Downloading");
        assert_eq!(
            msgs[1]["progressDetail"],
            json!({"current":500000,"total":1000000})
        );
        assert!(
            msgs[1]["progress"]
                .as_str()
                .unwrap()
                .starts_with("[=========================>")
        );
        let statuses = |v: Vec<Value>| {
            v.into_iter()
                .map(|m| m["status"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            statuses(p.on_transfer(&layer, TransferPhase::Verifying, 0, None)),
            ["Verifying Checksum", "Download complete"]
        );
        assert_eq!(
            statuses(p.on_transfer(&layer, TransferPhase::Complete, 0, None)),
            ["Pull complete"]
        );
        let fin = p.finish();
        assert_eq!(
            fin[0]["status"],
            "Status: Downloaded newer image for 127.0.0.1:5000/busybox:latest"
        );

        let mut again = PullProgress::new("busybox:latest");
        assert_eq!(again.start()["status"], "Pulling from library/busybox");
        assert_eq!(
            statuses(again.on_transfer(&layer, TransferPhase::AlreadyExists, 0, None)),
            ["Already exists"]
        );
        assert_eq!(
            again.finish()[0]["status"],
            "Status: Image is up to date for busybox:latest"
        );
    }

    #[test]
    fn push_progress_reads_like_dockers() {
        let mut p = PushProgress::new("127.0.0.1:5000/busybox:v1");
        assert_eq!(
            p.start()["status"],
            "The push refers to repository [127.0.0.1:5000/busybox]"
        );
        let layer = d("0123456789abcdef");
        let m = p.on_transfer(&layer, TransferPhase::Pushing, 10, Some(20));
        assert_eq!(
            (m[0]["status"].clone(), m[1]["status"].clone()),
            (json!("Preparing"), json!("Pushing"))
        );
        assert_eq!(
            p.on_transfer(&layer, TransferPhase::AlreadyExists, 0, None)[0]["status"],
            "Layer already exists"
        );
        let fin = p.finish(&d("ff"), Some(527));
        assert_eq!(fin[0]["status"], "v1: digest: sha256:ff size: 527");
        assert_eq!(fin[1]["aux"]["Tag"], "v1");
    }

    #[test]
    fn sizes_and_bars() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(4_261_000), "4.261MB");
        assert_eq!(progress_bar(10, None), "10B");
        assert!(progress_bar(100, Some(100)).starts_with(&format!("[{}]", "=".repeat(50))));
    }

    fn img(tags: &[&str]) -> ImageSummary {
        ImageSummary {
            id: d("abc"),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            size: 10,
            created: Some(5),
            containers: 0,
        }
    }

    #[test]
    fn image_list_items_and_filters() {
        let j = list_item(&img(&["busybox:latest"]), false);
        assert_eq!(j["Id"], "sha256:abc");
        assert_eq!(j["RepoTags"], json!(["busybox:latest"]));
        assert_eq!(j["SharedSize"], -1);
        assert!(j.get("VirtualSize").is_none());
        assert_eq!(list_item(&img(&[]), true)["VirtualSize"], 10);
        let f = |s: &str| Filters::parse(Some(s)).unwrap();
        assert!(list_matches(&img(&[]), &f(r#"{"dangling":["true"]}"#)).unwrap());
        assert!(!list_matches(&img(&["a:1"]), &f(r#"{"dangling":["true"]}"#)).unwrap());
        assert!(
            list_matches(
                &img(&["busybox:latest"]),
                &f(r#"{"reference":["busybox"]}"#)
            )
            .unwrap()
        );
        assert!(
            list_matches(
                &img(&["127.0.0.1:5000/x:1"]),
                &f(r#"{"reference":["127.0.0.1:5000/*"]}"#)
            )
            .unwrap()
        );
        assert!(!list_matches(&img(&["alpine:3"]), &f(r#"{"reference":["busy*"]}"#)).unwrap());
        assert!(list_matches(&img(&[]), &f(r#"{"label":["x"]}"#)).is_err());
    }

    #[test]
    fn rmi_inspect_history() {
        assert_eq!(
            removed(&[
                ImageDeleted::Untagged("busybox:latest".into()),
                ImageDeleted::Deleted(d("abc"))
            ]),
            json!([{"Untagged":"busybox:latest"},{"Deleted":"sha256:abc"}])
        );
        let oci = json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/w"},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:l1"]},
        });
        let j = inspect(json!({"summary": img(&["busybox:latest"]), "config": oci})).unwrap();
        assert_eq!(j["Id"], "sha256:abc");
        assert_eq!(j["Config"]["Cmd"], json!(["sh"]));
        assert_eq!(j["Config"]["WorkingDir"], "/w");
        assert_eq!(j["RootFS"]["Layers"], json!(["sha256:l1"]));
        assert_eq!(j["Architecture"], "amd64");
        let docker = json!({"Id": "sha256:x"});
        assert_eq!(inspect(docker.clone()).unwrap(), docker);
        let h = history(json!([
            {"created": "2024-01-01T00:00:00Z", "created_by": "ADD file"},
            {"created": "2024-01-02T00:00:00Z", "created_by": "CMD [\"sh\"]", "empty_layer": true},
        ]))
        .unwrap();
        assert_eq!(h[0]["CreatedBy"], "CMD [\"sh\"]");
        assert_eq!(h[1]["Created"], 1_704_067_200);
        assert!(history(json!({})).is_err());
    }
}
