//! `login`: checked with the registry, stored in the Docker config file.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use berth::image::{ImageError, ImageStore, RegistryOptions};

/// A registry whose token service refuses every credential.
fn refusing_registry() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let realm = format!("http://{addr}/token");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
            }
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"test\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_accepted_and_refuses_rejected_credentials() {
    let reg = crate::registry::require_registry();
    let tmp = crate::registry::tempdir();
    let file = tmp.path().join("docker/config.json");
    let opts = RegistryOptions {
        auth_file: Some(file.clone()),
        ..Default::default()
    };
    let store = ImageStore::open_with(&tmp.path().join("root"), opts).unwrap();
    // docker-registry without auth accepts anyone, as with `docker login`.
    assert_eq!(
        store.login_verified(&reg, "me", "secret").await.unwrap(),
        file
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        doc["auths"][&reg]["auth"], "bWU6c2VjcmV0",
        "base64 of me:secret"
    );

    let bad = refusing_registry();
    let err = store.login_verified(&bad, "me", "wrong").await.unwrap_err();
    assert!(matches!(err, ImageError::Credentials { .. }), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(
        doc["auths"].get(&bad).is_none(),
        "refused credentials are not stored"
    );
    assert!(matches!(
        store.login_verified("nodots", "a", "b").await,
        Err(ImageError::InvalidReference { .. })
    ));
}
