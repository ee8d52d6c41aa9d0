//! Errors as Docker answers them: the real status code and `{"message": "..."}`.

use crate::api::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// For answers made before routing (they still carry the version headers).
    pub fn into_response_with_version(self) -> Response {
        let mut r = self.into_response();
        super::version::stamp(r.headers_mut());
        r
    }
}

/// The status Docker gives each kind of failure. The CLI acts on these: 404 makes `docker run`
/// pull and makes `docker inspect` try the next object kind.
pub(crate) fn status_of(e: &ApiError) -> StatusCode {
    match e {
        // The API cannot ask the user, so a `confirm` rule refuses like a `deny`.
        ApiError::Denied { .. } | ApiError::ConfirmationRequired { .. } => StatusCode::FORBIDDEN,
        ApiError::NoSuchContainer(_) | ApiError::NoSuchExec(_) | ApiError::NoSuchImage(_) => {
            StatusCode::NOT_FOUND
        }
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::NotModified(_) => StatusCode::NOT_MODIFIED,
        ApiError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
        ApiError::NotYetSupported { .. } => StatusCode::NOT_IMPLEMENTED,
        ApiError::Engine { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        let message = match &e {
            // Docker's wording, which scripts and tools match on.
            ApiError::NoSuchContainer(id) => format!("No such container: {id}"),
            ApiError::NoSuchImage(r) => format!("No such image: {r}"),
            ApiError::NoSuchExec(id) => format!("No such exec instance: {id}"),
            ApiError::ConfirmationRequired { .. } => format!(
                "{e} (the API cannot ask for confirmation; use the berth console, or change the policy)"
            ),
            _ => e.to_string(),
        };
        Self::new(status_of(&e), message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::NOT_MODIFIED {
            // A 304 has no body, by HTTP's rules.
            return self.status.into_response();
        }
        let body = serde_json::json!({ "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// The result type of every handler.
pub(crate) type HttpResult<T = Response> = Result<T, HttpError>;

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(r: Response) -> (StatusCode, Vec<u8>) {
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    #[tokio::test]
    async fn errors_map_to_dockers_status_codes_and_message_bodies() {
        let cases = [
            (
                ApiError::Denied {
                    rule: Some("/etc/berth/policy.toml:3".into()),
                    reason: "only root".into(),
                },
                403,
                "denied by policy (rule /etc/berth/policy.toml:3): only root",
            ),
            (
                ApiError::NoSuchContainer("web".into()),
                404,
                "No such container: web",
            ),
            (
                ApiError::NoSuchImage("busybox".into()),
                404,
                "No such image: busybox",
            ),
            (
                ApiError::NoSuchExec("e1".into()),
                404,
                "No such exec instance: e1",
            ),
            (ApiError::Conflict("it runs".into()), 409, "it runs"),
            (
                ApiError::InvalidArgument("bad".into()),
                400,
                "invalid argument: bad",
            ),
            (
                ApiError::NotYetSupported { what: "exec" },
                501,
                "exec is not yet supported by this build of berth",
            ),
            (
                ApiError::engine("pulling x", "boom"),
                500,
                "pulling x: boom",
            ),
        ];
        for (err, status, message) in cases {
            let (s, body) = body_of(HttpError::from(err).into_response()).await;
            assert_eq!(s.as_u16(), status);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v, serde_json::json!({ "message": message }));
        }
    }

    #[tokio::test]
    async fn confirm_is_forbidden_with_its_reason_and_304_has_no_body() {
        let e = HttpError::from(ApiError::ConfirmationRequired {
            rule: None,
            reason: "privileged".into(),
        });
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.contains("privileged"), "{}", e.message);
        let (s, body) =
            body_of(HttpError::from(ApiError::NotModified("running".into())).into_response()).await;
        assert_eq!((s, body.len()), (StatusCode::NOT_MODIFIED, 0));
    }
}
