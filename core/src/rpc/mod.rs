//! Signed remote procedure calls between one's own devices (decision 0014, UpNext §5).
//!
//! A contact at Full Access (trust 3) sends `{type:"RPC", method, params, id, ts, signature}`
//! inside the Noise session (frame tag 50, feature bit [`crate::session::FEATURE_RPC`]); the
//! answer is `{type:"RPC_RES", id, result | error:{code,message}}` (tag 51). The signature
//! covers the session's handshake hash, so a request cannot be replayed in or moved to another
//! session; ids are unique per sender in a bounded window. What a request may do is limited by
//! the scopes granted to the sender (`category:action:resource`, [`scope`]).
//!
//! - [`path`], [`scope`]: strict request paths and the scope grammar (sans-IO).
//! - [`wire`]: the JSON messages, their bounds, signing and verifying (sans-IO).
//! - [`guard`]: time window, replay window and rate limit per contact (sans-IO).
//! - [`store`]: grants and the audit log in SQLite.
//! - [`fs`]: the file-system methods, confined to the roots the user chose; [`quota`]: size
//!   quotas per root; [`upload`]: streamed uploads in binary chunks (tags 52–53).
//! - [`server`]: checks a request against the grants and runs it.
//! - [`alert`]: when the armed baby monitor's sound levels raise an alert (sans-IO).

pub mod alert;
pub mod b64;
pub mod fs;
pub mod guard;
mod part;
pub mod path;
pub mod quota;
pub mod refusals;
pub mod scope;
pub mod server;
pub mod store;
pub mod upload;
pub mod wire;

/// An RPC error: an HTTP-like code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RpcError {
    /// 400 bad params, 403 scope denied, 404 not found, 409 busy, 413 too large, 429 rate
    /// limited, 500 server error.
    pub code: u16,
    /// What went wrong.
    pub message: String,
}

impl RpcError {
    /// A new error.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// 400: malformed request or parameters.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 403: not granted.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404: no such file, folder or method.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 409: busy with someone else (the camera streams to another viewer).
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    /// 413: over a size limit or quota.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }

    /// 429: rate limited.
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::new(429, message)
    }

    /// 500: the server failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
}
