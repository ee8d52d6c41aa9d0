//! API versions: the `/vX.Y` path prefix, the bounds berth accepts, and the headers every
//! answer carries.

use super::error::HttpError;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use std::fmt;

/// A Docker Engine API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u16, pub u16);

/// The version berth advertises (as Podman does) and the oldest it accepts.
pub const API_MAX: ApiVersion = ApiVersion(1, 44);
pub const API_MIN: ApiVersion = ApiVersion(1, 24);

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (a, b) = s.split_once('.').ok_or(())?;
        Ok(Self(a.parse().map_err(|_| ())?, b.parse().map_err(|_| ())?))
    }
}

/// Split a `/vX.Y/rest` path into the version and `/rest`; other paths have no version.
fn split_version(path: &str) -> Result<(Option<ApiVersion>, &str), String> {
    let Some(after) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let (ver, rest) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    // `/volumes`, `/version` start with `/v` too: only digits and one dot make a version.
    if !ver.contains('.') || !ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok((None, path));
    }
    let v: ApiVersion = ver
        .parse()
        .map_err(|_| format!("malformed API version {ver:?}"))?;
    Ok((Some(v), rest))
}

/// Strip the version prefix and check it; the request carries its [`ApiVersion`] (the newest,
/// when it had none) as an extension.
pub(super) fn prepare<B>(req: hyper::Request<B>) -> Result<hyper::Request<B>, HttpError> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let (version, rest) =
        split_version(&path).map_err(|m| HttpError::new(StatusCode::BAD_REQUEST, m))?;
    let version = match version {
        None => API_MAX,
        Some(v) if v > API_MAX => {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "client version {v} is too new. Maximum supported API version is {API_MAX}"
                ),
            ));
        }
        Some(v) if v < API_MIN => {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "client version {v} is too old. Minimum supported API version is {API_MIN}, please upgrade your client to a newer version"
                ),
            ));
        }
        Some(v) => {
            let pq = match parts.uri.query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_owned(),
            };
            parts.uri = pq.parse::<Uri>().map_err(|e| {
                HttpError::new(StatusCode::BAD_REQUEST, format!("bad request path: {e}"))
            })?;
            v
        }
    };
    parts.extensions.insert(version);
    Ok(hyper::Request::from_parts(parts, body))
}

/// Headers every answer carries (the CLI reads them from `/_ping`; other clients from any).
pub(super) fn stamp(headers: &mut HeaderMap) {
    headers.insert(
        "api-version",
        HeaderValue::from_str(&API_MAX.to_string()).expect("a version is a valid header"),
    );
    headers.insert("ostype", HeaderValue::from_static("linux"));
    headers.insert(
        "server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_split_only_when_it_is_a_version() {
        assert_eq!(
            split_version("/v1.47/containers/json").unwrap(),
            (Some(ApiVersion(1, 47)), "/containers/json")
        );
        assert_eq!(split_version("/v1.24").unwrap(), (Some(API_MIN), "/"));
        assert_eq!(split_version("/version").unwrap(), (None, "/version"));
        assert_eq!(split_version("/volumes/x").unwrap(), (None, "/volumes/x"));
        assert_eq!(split_version("/_ping").unwrap(), (None, "/_ping"));
        assert!(split_version("/v1.2.3/info").is_err());
    }

    fn prepared(uri: &str) -> Result<(String, ApiVersion), StatusCode> {
        let req = hyper::Request::builder().uri(uri).body(()).unwrap();
        prepare(req)
            .map(|r| {
                let v = *r.extensions().get::<ApiVersion>().unwrap();
                (r.uri().to_string(), v)
            })
            .map_err(|e| e.status)
    }

    #[test]
    fn prepare_strips_the_prefix_and_keeps_the_query() {
        assert_eq!(
            prepared("/v1.44/containers/json?all=1").unwrap(),
            ("/containers/json?all=1".to_owned(), API_MAX)
        );
        assert_eq!(
            prepared("/v1.30/info").unwrap(),
            ("/info".to_owned(), ApiVersion(1, 30))
        );
        assert_eq!(prepared("/info").unwrap(), ("/info".to_owned(), API_MAX));
        assert_eq!(prepared("/v1.50/info"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(prepared("/v1.12/info"), Err(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn versions_order_numerically() {
        assert!(ApiVersion(1, 9) < ApiVersion(1, 10));
        assert!("1.50".parse::<ApiVersion>().unwrap() > API_MAX);
        assert_eq!(API_MAX.to_string(), "1.44");
    }

    #[test]
    fn advertised_bounds_match_the_engines_version_info() {
        let v = crate::api::dispatch::version_info();
        assert_eq!(v.api_version, API_MAX.to_string());
        assert_eq!(v.min_api_version, API_MIN.to_string());
    }
}
