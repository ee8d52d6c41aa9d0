//! Image references with Docker's rules (distribution/reference): `busybox` is
//! `docker.io/library/busybox:latest`; a first component with a `.` or `:` or equal to
//! `localhost` is a registry (with an optional port); `name@sha256:…` pins a digest and a tag and
//! a digest may both be given.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;
use super::error::{ImageError, Result};

/// The registry Docker uses when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses with Docker's rules and normalises (default registry, `library/`, `latest`).
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| ImageError::InvalidReference {
            reference: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(bad("empty reference"));
        }
        if input.trim() != input {
            return Err(bad("leading or trailing whitespace"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                let d = Digest::parse(d).map_err(|e| bad(&e.to_string()))?;
                (r, Some(d))
            }
            None => (input, None),
        };
        // A tag is what follows the last ':' if that ':' comes after the last '/'.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(|r| bad(&r))?;
        }
        if name.is_empty() {
            return Err(bad("empty repository name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad("repository name longer than 255 characters"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if is_registry(first) => (first.to_owned(), path.to_owned()),
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
        };
        validate_registry(&registry).map_err(|r| bad(&r))?;
        validate_path(&path).map_err(|r| bad(&r))?;
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DEFAULT_REGISTRY.to_owned()
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            if is_hex64(&path) {
                return Err(bad(
                    "cannot use a 64-character hexadecimal string as a repository name",
                ));
            }
            format!("library/{path}")
        } else {
            path
        };
        // Docker's limit is on the normalised name: what parses must print to what parses.
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(bad(
                "repository name longer than 255 characters with its registry",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// A reference with the given registry/repository and tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        validate_tag(tag).map_err(|reason| ImageError::InvalidReference {
            reference: format!("{}:{tag}", self.name()),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest (no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, fully qualified.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What Docker shows: without `docker.io/` and `library/` — unless the shorter form would
    /// parse as another image: `docker.io/ghcr.io/x` keeps its registry (without it `ghcr.io`
    /// would be the registry), and `library/<64 hex digits>` its `library/` (a bare 64-hex name
    /// is refused). The familiar form always parses back to the same reference.
    pub fn familiar(&self) -> String {
        let name = if self.registry == DEFAULT_REGISTRY {
            let repo = &self.repository;
            let first = repo.split('/').next().unwrap_or_default();
            if repo.contains('/') && is_registry(first) {
                self.name()
            } else {
                match repo.strip_prefix("library/").filter(|r| !r.contains('/')) {
                    Some(r) if !is_hex64(r) => r.to_owned(),
                    _ => repo.clone(),
                }
            }
        } else {
            self.name()
        };
        let mut s = name;
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }

    /// The familiar repository name alone (`busybox`, `127.0.0.1:5055/x`).
    pub fn familiar_name(&self) -> String {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
        .familiar()
    }

    /// The host part without a port, for the "is it loopback" check.
    pub fn registry_host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(rest) = r.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        r.rsplit_once(':').map_or(r, |(h, _)| h)
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

fn validate_registry(r: &str) -> std::result::Result<(), String> {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("registry {r:?}: unclosed '['"))?;
        if h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("registry {r:?}: bad IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            p => (
                "",
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("registry {r:?}: junk after ']'"))?,
                ),
            ),
        }
    } else {
        match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u32>().is_err() {
            return Err(format!("registry {r:?}: port must be a number"));
        }
        if p.parse::<u32>().is_ok_and(|n| n == 0 || n > 65535) {
            return Err(format!("registry {r:?}: port out of range"));
        }
    }
    if host.is_empty() && !r.starts_with('[') {
        return Err(format!("registry {r:?}: empty host"));
    }
    for label in host.split('.').filter(|_| !host.is_empty()) {
        let ok = !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("registry {r:?}: bad host name"));
        }
    }
    Ok(())
}

/// Path components: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, joined by `/`.
fn validate_path(path: &str) -> std::result::Result<(), String> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".into());
    }
    for comp in path.split('/') {
        if comp.is_empty() {
            return Err("empty path component in repository name".into());
        }
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(format!(
                "path component {comp:?} must start and end with a lowercase letter or digit"
            ));
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            // A separator run: '.', '_', '__' or one or more '-'.
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return Err(format!(
                    "path component {comp:?} has an invalid separator {sep:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if b.is_empty() {
        return Err("empty tag".into());
    }
    if b.len() > 128 {
        return Err("tag longer than 128 characters".into());
    }
    if !word(b[0]) || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(format!("invalid tag {tag:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_defaults() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/user/app"),
            "docker.io/user/app:latest"
        );
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn registries_and_ports() {
        assert_eq!(full("127.0.0.1:5055/a/b"), "127.0.0.1:5055/a/b:latest");
        assert_eq!(full("localhost/x:1"), "localhost/x:1");
        assert_eq!(full("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(full("quay.io/org/img:v1.2"), "quay.io/org/img:v1.2");
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
        let r = Reference::parse("127.0.0.1:5055/a:t").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5055");
        assert_eq!(r.registry_host(), "127.0.0.1");
        assert_eq!(r.repository(), "a");
        assert_eq!(r.tag(), Some("t"));
        // No dot, no colon, not localhost: a Docker Hub user, not a registry.
        assert_eq!(full("myhost/x"), "docker.io/myhost/x:latest");
    }

    #[test]
    fn digests() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().as_str(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        let r = Reference::parse(&format!("127.0.0.1:5055/x:v1@{D}")).unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest().unwrap().as_str(), D);
        assert_eq!(r.familiar(), format!("127.0.0.1:5055/x:v1@{D}"));
    }

    #[test]
    fn familiar_form() {
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("user/app:2").unwrap().familiar(),
            "user/app:2"
        );
        assert_eq!(
            Reference::parse("127.0.0.1:5055/a")
                .unwrap()
                .familiar_name(),
            "127.0.0.1:5055/a"
        );
    }

    #[test]
    fn the_length_limit_is_on_the_normalised_name() {
        // Found by the `reference` fuzz target: 240 characters parsed, and printed as 258 that
        // did not.
        let long = "a".repeat(240);
        let err = Reference::parse(&long).unwrap_err().to_string();
        assert!(err.contains("longer than 255"), "{err}");
        let fits = "a".repeat(255 - "docker.io/library/".len());
        let r = Reference::parse(&fits).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn familiar_form_never_names_another_image() {
        // Found by the `reference` fuzz target: the short form read `ghcr.docker.io` as a
        // registry.
        let hex = "0123456789abcdef".repeat(4);
        for (input, familiar) in [
            (
                "docker.io/ghcr.docker.io/bcd01234567d9aeb",
                "docker.io/ghcr.docker.io/bcd01234567d9aeb:latest",
            ),
            ("docker.io/localhost/x:1", "docker.io/localhost/x:1"),
            (&format!("library/{hex}"), &format!("library/{hex}:latest")),
            ("library/ghcr.io", "ghcr.io:latest"),
            ("team/ghcr.io", "team/ghcr.io:latest"),
        ] {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(Reference::parse(familiar).unwrap(), r, "{input}");
        }
    }

    #[test]
    fn malformed_are_refused_with_a_reason() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:abc",
            "busybox@md5:abc",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "a___b",
            "-a",
            "a b",
            " busybox",
            "127.0.0.1:port/x",
            "127.0.0.1:99999/x",
            &"a".repeat(256),
            &format!("x:{}", "t".repeat(129)),
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let err = Reference::parse(bad).expect_err(bad);
            assert!(
                matches!(err, ImageError::InvalidReference { .. }),
                "{bad:?} gave {err}"
            );
        }
        // As in Docker, `host:5000` alone is repository `host` with tag `5000`.
        let r = Reference::parse("host:5000").unwrap();
        assert_eq!((r.repository(), r.tag()), ("library/host", Some("5000")));
    }

    #[test]
    fn separators() {
        assert!(Reference::parse("a.b_c__d-e---f").is_ok());
        assert!(Reference::parse("a/b.c/d").is_ok());
    }
}
