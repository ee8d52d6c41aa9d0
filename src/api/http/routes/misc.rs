//! Object kinds the engine does not have: plugins (none), and unknown paths are 404 JSON, so
//! `docker inspect`'s fallback chain (container → image → network → volume → plugin) ends in
//! "No such object".

use super::AppState;
use crate::api::http::error::HttpError;
use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::Uri;
use axum::routing::get;
use serde_json::{Value, json};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/plugins", get(plugins))
        .route("/plugins/{*name}", get(plugin))
}

async fn plugins() -> Json<Value> {
    Json(json!([]))
}

async fn plugin(Path(name): Path<String>) -> HttpError {
    let name = name.strip_suffix("/json").unwrap_or(&name).to_owned();
    HttpError::not_found(format!("plugin \"{name}\" not found"))
}

pub(super) async fn not_found(uri: Uri) -> HttpError {
    HttpError::not_found(format!("page not found: {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_plugins_are_404() {
        let e = plugin(Path("x/json".into())).await;
        assert_eq!(e.status, axum::http::StatusCode::NOT_FOUND);
        assert_eq!(e.message, "plugin \"x\" not found");
        assert_eq!(plugins().await.0, json!([]));
    }
}
