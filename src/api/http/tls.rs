//! `berth serve --tcp`: the API over TCP, only with TLS and a client certificate (as
//! `dockerd --tlsverify`). There is no plain TCP listener and no TLS without client
//! certificates: over TCP, the certificate is the only thing that says who is asking.
//!
//! **Policy subject of a TLS client: the certificate's subject common name (CN) is a user
//! name of this host.** A client with `CN=alice` is treated as the local user `alice`: her
//! uid, primary gid and supplementary groups (from the user database) are the subject, so the
//! policy's `user:alice`, `group:…`, `uid:N` rules apply to her as to a socket peer. A
//! certificate whose CN is not a local user, or that has no CN or more than one, gets 403 on
//! every request (the handshake succeeds: the CA vouched for it, the policy has no subject).

use super::ServeError;
use crate::api::dispatch::Caller;
use crate::security::Subject;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the TLS files are unless told otherwise (`--tlscacert`, `--tlscert`, `--tlskey`).
pub const DEFAULT_TLS_DIR: &str = "/etc/berth/tls";

/// The CA that signs client certificates, and the server's own certificate and key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for TlsFiles {
    /// `/etc/berth/tls/{ca,cert,key}.pem` (Docker's file names).
    fn default() -> Self {
        let d = Path::new(DEFAULT_TLS_DIR);
        Self {
            ca: d.join("ca.pem"),
            cert: d.join("cert.pem"),
            key: d.join("key.pem"),
        }
    }
}

fn tls_err(path: &Path, message: impl std::fmt::Display) -> ServeError {
    ServeError::Tls {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// A server configuration that requires a client certificate signed by `files.ca`.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, ServeError> {
    for p in [&files.ca, &files.cert, &files.key] {
        if !p.exists() {
            return Err(tls_err(
                p,
                "not found: --tcp needs TLS with client certificates \
                 (give --tlscacert, --tlscert and --tlskey)",
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let read_certs = |p: &Path| -> Result<Vec<CertificateDer<'static>>, ServeError> {
        let certs = CertificateDer::pem_file_iter(p)
            .map_err(|e| tls_err(p, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_err(p, e))?;
        if certs.is_empty() {
            return Err(tls_err(p, "no certificate in the file"));
        }
        Ok(certs)
    };
    let mut roots = RootCertStore::empty();
    for c in read_certs(&files.ca)? {
        roots
            .add(c)
            .map_err(|e| tls_err(&files.ca, format!("not a usable CA certificate: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| tls_err(&files.ca, e))?;
    let chain = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| tls_err(&files.key, e))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&files.cert, e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            tls_err(
                &files.cert,
                format!("with key {}: {e}", files.key.display()),
            )
        })?;
    Ok(Arc::new(config))
}

/// The policy subject of a verified client certificate (see the module's documentation).
pub(super) fn identify(cert: Option<&CertificateDer<'_>>) -> Result<Caller, String> {
    let cert = cert.ok_or("the client sent no certificate")?;
    let cn = common_name(cert.as_ref())?;
    let user = nix::unistd::User::from_name(&cn)
        .map_err(|e| format!("looking up user {cn:?}: {e}"))?
        .ok_or_else(|| format!("the client certificate's CN {cn:?} is not a user of this host"))?;
    let cname = std::ffi::CString::new(cn.clone())
        .map_err(|_| format!("the client certificate's CN {cn:?} contains a NUL"))?;
    let groups = nix::unistd::getgrouplist(&cname, user.gid)
        .map_err(|e| format!("looking up the groups of {cn:?}: {e}"))?
        .into_iter()
        .map(|g| g.as_raw())
        .filter(|g| *g != user.gid.as_raw())
        .collect();
    Ok(Caller {
        subject: Subject {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            groups,
        },
        confirmed: false,
    })
}

/// One DER element: its tag, its contents, and what follows it.
fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, d) = d.split_first()?;
    let (&first, d) = d.split_first()?;
    let (len, d) = if first < 0x80 {
        (first as usize, d)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || d.len() < n {
            return None;
        }
        let len = d[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &d[n..])
    };
    (d.len() >= len).then(|| (tag, &d[..len], &d[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// 2.5.4.3, commonName.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

/// The subject CN of a DER certificate. Exactly one is required.
pub(super) fn common_name(cert: &[u8]) -> Result<String, String> {
    let bad = || "the client certificate cannot be parsed".to_owned();
    let Some((SEQUENCE, cert, _)) = tlv(cert) else {
        return Err(bad());
    };
    let Some((SEQUENCE, tbs, _)) = tlv(cert) else {
        return Err(bad());
    };
    let mut rest = tbs;
    // [0] version (optional), then serial, signature algorithm, issuer, validity.
    if let Some((0xa0, _, r)) = tlv(rest) {
        rest = r;
    }
    for _ in 0..4 {
        rest = tlv(rest).ok_or_else(bad)?.2;
    }
    let Some((SEQUENCE, mut rdns, _)) = tlv(rest) else {
        return Err(bad());
    };
    let mut found = Vec::new();
    while !rdns.is_empty() {
        let Some((SET, mut set, r)) = tlv(rdns) else {
            return Err(bad());
        };
        rdns = r;
        while !set.is_empty() {
            let Some((SEQUENCE, atv, r)) = tlv(set) else {
                return Err(bad());
            };
            set = r;
            let Some((OID, oid, value)) = tlv(atv) else {
                return Err(bad());
            };
            if oid == CN_OID {
                let (tag, v, _) = tlv(value).ok_or_else(bad)?;
                // UTF8String, PrintableString, IA5String.
                if !matches!(tag, 0x0c | 0x13 | 0x16) {
                    return Err("the client certificate's CN is not a text string".into());
                }
                found.push(String::from_utf8(v.to_vec()).map_err(|_| bad())?);
            }
        }
    }
    match found.as_slice() {
        [one] if !one.is_empty() => Ok(one.clone()),
        [] | [_] => Err("the client certificate has no subject CN".into()),
        _ => Err("the client certificate has more than one subject CN".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 -subj "/O=berth test/CN=alice/OU=unit"`.
    const ALICE: &str = "-----BEGIN CERTIFICATE-----
MIIBvjCCAWWgAwIBAgIUVGxIjqLgz6MXnoL5mTzd6jvfe0swCgYIKoZIzj0EAwIw
NDETMBEGA1UECgwKYmVydGggdGVzdDEOMAwGA1UEAwwFYWxpY2UxDTALBgNVBAsM
BHVuaXQwIBcNMjYxMTI4MjMzOTA0WhgPMjEyNjExMDQyMzM5MDRaMDQxEzARBgNV
BAoMCmJlcnRoIHRlc3QxDjAMBgNVBAMMBWFsaWNlMQ0wCwYDVQQLDAR1bml0MFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6NN2l2w/thBDEl6EZ6QHBdFJb3IEKyrL
sQqxby2N4gPxsMheIHdmh9nHmtEfdtKa8+aut6vx8S5kOXpzRo8R2KNTMFEwHQYD
VR0OBBYEFKnpPHlZAVG1AfPaoceDBA3yNdguMB8GA1UdIwQYMBaAFKnpPHlZAVG1
AfPaoceDBA3yNdguMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIg
WxlxpvzPPWmrYboRxpPuQikolCjeTsJx04RUAWhFgB8CIGtOds5KHyxny/RhMOc6
etNEOAtCxPVK1VJSXQunRb/D
-----END CERTIFICATE-----
";

    /// `openssl req -x509 -subj "/CN=a/CN=b"`.
    const TWO_CNS: &str = "-----BEGIN CERTIFICATE-----
MIIBhjCCAS2gAwIBAgIUGf2MtBJc5MFWbriIdtIM3v850icwCgYIKoZIzj0EAwIw
GDEKMAgGA1UEAwwBYTEKMAgGA1UEAwwBYjAgFw0yNjExMjgyMzM5MDRaGA8yMTI2
MTEwNDIzMzkwNFowGDEKMAgGA1UEAwwBYTEKMAgGA1UEAwwBYjBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABF4uwPDCig78auZ6TxLbbaxWNKIggIv3t0tUhmDxdLJ/
oaM9e9k5LA5k2z+vz1nhXpwPYYgq7SjWAb4/nNaFhH6jUzBRMB0GA1UdDgQWBBT/
9w8HTDVSF9J1fXRJAc9kkr2RhTAfBgNVHSMEGDAWgBT/9w8HTDVSF9J1fXRJAc9k
kr2RhTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCICjN7wn8xk2O
FqKk0MrFNDXngvbJ744kz5oXzV8IFy9hAiAyzgGSpkcbJ6Dst2M6UjFmv4iiL+7E
7Hfs+W5+LBqUHg==
-----END CERTIFICATE-----
";

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn the_subject_cn_is_found_among_other_attributes() {
        assert_eq!(common_name(der(ALICE).as_ref()).unwrap(), "alice");
        let err = common_name(der(TWO_CNS).as_ref()).unwrap_err();
        assert!(err.contains("more than one"), "{err}");
        assert!(common_name(b"\x30\x03\x02\x01\x00").is_err());
        assert!(common_name(&der(ALICE).as_ref()[..100]).is_err());
        assert!(common_name(&[]).is_err());
    }

    #[test]
    fn a_cn_that_is_no_local_user_has_no_subject() {
        if nix::unistd::User::from_name("alice")
            .ok()
            .flatten()
            .is_some()
        {
            eprintln!("skipping: this machine has a user alice");
            return;
        }
        let err = identify(Some(&der(ALICE))).unwrap_err();
        assert!(err.contains("not a user of this host"), "{err}");
        assert!(identify(None).is_err());
    }

    #[test]
    fn missing_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let err = server_config(&files).unwrap_err().to_string();
        assert!(
            err.contains("ca.pem") && err.contains("--tlscacert"),
            "{err}"
        );
        std::fs::write(&files.ca, "not pem").unwrap();
        std::fs::write(&files.cert, ALICE).unwrap();
        std::fs::write(&files.key, "x").unwrap();
        let err = server_config(&files).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
    }
}
