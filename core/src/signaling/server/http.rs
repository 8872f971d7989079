//! HTTP routes, as the reference `peer` server lays them out under its base path:
//! `GET {path}` (server info), `GET {path}{key}/id` (a fresh id), `GET {path}{key}/peers`
//! (discovery, always refused) and the WebSocket at `{path}peerjs`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Shared;
use super::conn;
use super::registry::Credentials;
use crate::signaling::protocol::MAX_FRAME_BYTES;

/// Largest WebSocket message or frame the transport reads at all. Frames between
/// [`MAX_FRAME_BYTES`] and this size get a recoverable ERROR from the protocol check; larger
/// ones break the stream and close the socket.
pub(super) const HARD_FRAME_LIMIT: usize = 4 * MAX_FRAME_BYTES;

const INFO: &str = r#"{"name":"PeerJS Server","description":"A server side element to broker connections between PeerJS clients.","website":"https://peerjs.com/"}"#;

/// The router for base path `base`, which must start and end with `/`.
pub(super) fn router(base: &str, shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route(base, get(info))
        .route(&format!("{base}peerjs"), get(upgrade))
        .route(&format!("{base}{{key}}/id"), get(new_id))
        .route(&format!("{base}{{key}}/peers"), get(peers));
    if base != "/" {
        router = router.route(base.trim_end_matches('/'), get(info));
    }
    router.with_state(shared)
}

/// Checks a configured base path and returns it with leading and trailing slashes.
pub(super) fn normalize_path(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let safe = |s: &&str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    if !segments.iter().all(safe) {
        return None;
    }
    Some(
        segments
            .iter()
            .fold("/".to_owned(), |acc, s| format!("{acc}{s}/")),
    )
}

/// A response any origin may read, as the reference server's CORS middleware allows.
fn cors(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    let any = HeaderValue::from_static("*");
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, any);
    response
}

async fn info() -> Response {
    cors(StatusCode::OK, "application/json", INFO.to_owned())
}

async fn peers() -> Response {
    cors(
        StatusCode::UNAUTHORIZED,
        "text/plain",
        "Unauthorized".to_owned(),
    )
}

async fn new_id(State(shared): State<Arc<Shared>>) -> Response {
    loop {
        let Some(id) = random_uuid() else {
            return cors(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                String::new(),
            );
        };
        if !shared.registry().contains(&id) {
            return cors(StatusCode::OK, "text/plain", id);
        }
    }
}

/// Body of the 429 that refuses a WebSocket beyond the per-address cap.
pub(super) const TOO_MANY_CONNECTIONS: &str = "Too many connections from this address";

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(slot) = shared.admit(remote.ip()) else {
        tracing::debug!(%remote, "refused a WebSocket over the per-address cap");
        let body = TOO_MANY_CONNECTIONS.to_owned();
        return cors(StatusCode::TOO_MANY_REQUESTS, "text/plain", body);
    };
    let creds = Credentials::from_query(query.as_deref().unwrap_or_default());
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| conn::run(socket, shared, creds, slot))
}

/// A random (version 4) UUID in its usual lowercase text form, or None if the OS RNG fails.
fn random_uuid() -> Option<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::protocol::is_valid_id;

    #[test]
    fn paths_are_normalized_or_refused() {
        assert_eq!(normalize_path("").as_deref(), Some("/"));
        assert_eq!(normalize_path("/").as_deref(), Some("/"));
        assert_eq!(normalize_path("myapp").as_deref(), Some("/myapp/"));
        assert_eq!(normalize_path("//a/b.c/").as_deref(), Some("/a/b.c/"));
        for bad in ["/{key}", "/a*", "/a b", "/ä"] {
            assert_eq!(normalize_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_uuid_shaped_and_valid() {
        let id = random_uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(is_valid_id(&id));
        assert_ne!(id, random_uuid().unwrap());
    }
}
