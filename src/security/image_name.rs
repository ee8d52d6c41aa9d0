//! Docker's normalisation of image references, as far as the policy needs it: which registry
//! and which repository a reference names.
//!
//! `busybox` → registry `docker.io`, repository `docker.io/library/busybox`;
//! `ghcr.io/o/app:1@sha256:…` → `ghcr.io`, `ghcr.io/o/app`. The first path component is a
//! registry when it contains a `.` or a `:`, or is `localhost` (Docker's rule); otherwise the
//! reference is on Docker Hub, and a one-component name lives under `library/`. Docker Hub's
//! other host names (`index.docker.io`, `registry-1.docker.io`) become `docker.io`. Host names
//! are lower-cased (they are case-insensitive); the path is kept as written, so a malformed
//! reference still normalises to something the image manager will reject later.

/// The registry and repository a reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// The registry plus the path, without tag or digest: `docker.io/library/busybox`.
    pub repository: String,
}

impl ImageName {
    pub fn parse(reference: &str) -> Self {
        let reference = reference.trim();
        // A digest ends the name.
        let name = reference.split_once('@').map_or(reference, |(n, _)| n);
        // A tag is a `:` after the last `/` (a `:` before it is a registry port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let name = match name[last_slash..].find(':') {
            Some(i) => &name[..last_slash + i],
            None => name,
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_ascii_lowercase(), rest.to_owned())
            }
            _ => ("docker.io".to_owned(), name.to_owned()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
            _ => registry,
        };
        let path = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Self {
            repository: format!("{registry}/{path}"),
            registry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(r: &str) -> (String, String) {
        let i = ImageName::parse(r);
        (i.registry, i.repository)
    }

    #[test]
    fn docker_hub_short_names() {
        let hub = |r: &str| ("docker.io".to_owned(), r.to_owned());
        assert_eq!(n("busybox"), hub("docker.io/library/busybox"));
        assert_eq!(n("busybox:1.36"), hub("docker.io/library/busybox"));
        assert_eq!(n("library/busybox"), hub("docker.io/library/busybox"));
        assert_eq!(n("bitnami/redis:7"), hub("docker.io/bitnami/redis"));
        assert_eq!(
            n("docker.io/busybox@sha256:abcd"),
            hub("docker.io/library/busybox")
        );
        assert_eq!(
            n("index.docker.io/library/alpine"),
            hub("docker.io/library/alpine")
        );
    }

    #[test]
    fn explicit_registries_keep_ports_and_lose_tags() {
        assert_eq!(
            n("127.0.0.1:5000/library/busybox:latest"),
            (
                "127.0.0.1:5000".into(),
                "127.0.0.1:5000/library/busybox".into()
            )
        );
        assert_eq!(
            n("localhost/app"),
            ("localhost".into(), "localhost/app".into())
        );
        assert_eq!(
            n("GHCR.io/o/app:1@sha256:00"),
            ("ghcr.io".into(), "ghcr.io/o/app".into())
        );
        // a first component without `.`/`:` is a Docker Hub namespace, not a host
        assert_eq!(
            n("myhost/app"),
            ("docker.io".into(), "docker.io/myhost/app".into())
        );
    }
}
