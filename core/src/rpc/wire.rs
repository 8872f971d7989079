//! The RPC messages as JSON inside session frames (tags 50 and 51), their bounds, and the
//! signature of a request: Ed25519 by the sender's identity over
//! `DOMAIN ‖ session binding ‖ ts ‖ id ‖ method ‖ params` (lengths prefixed, params as
//! compact JSON with sorted keys), so it holds only in the session it was made for
//! (decision 0014).

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RpcError;
use crate::identity::Identity;

/// Largest encoded request, in bytes (fits one session frame).
pub const MAX_REQUEST: usize = 60 * 1024;
/// Largest encoded response, in bytes.
pub const MAX_RESPONSE: usize = 62 * 1024;
/// Most bytes of a result meant to fit one response (the rest is the response's envelope):
/// lists stop before it and say `truncated`.
pub const MAX_RESULT: usize = MAX_RESPONSE - 512;
/// Longest request id.
pub const MAX_ID: usize = 64;
/// Longest method name.
pub const MAX_METHOD: usize = 32;
/// Domain of the request signature.
const DOMAIN: &[u8] = b"peerns2/rpc/v1\0";

/// A signed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// e.g. `fs.list`.
    pub method: String,
    /// The method's parameters (a JSON object).
    pub params: Value,
    /// Unique per sender: 1–64 characters of `[A-Za-z0-9_-]`.
    pub id: String,
    /// The sender's clock when it signed, Unix ms.
    pub ts_ms: u64,
    /// Ed25519 signature (see the module docs).
    pub signature: [u8; 64],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(rename = "type")]
    kind: String,
    method: String,
    params: Value,
    id: String,
    ts: u64,
    signature: String,
}

/// A response: the request's id and a result or an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The request's id (empty if the request was unreadable).
    pub id: String,
    /// What the method returned.
    pub outcome: Result<Value, RpcError>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawError {
    code: u16,
    message: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<RawError>,
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_method(m: &str) -> bool {
    (1..=MAX_METHOD).contains(&m.len())
        && m.bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
}

/// What a signature covers.
fn signed_bytes(binding: &[u8; 32], method: &str, params: &Value, id: &str, ts: u64) -> Vec<u8> {
    // serde_json's map keeps keys sorted, so the same value always gives the same bytes.
    let params = serde_json::to_vec(params).unwrap_or_default();
    let mut m = Vec::with_capacity(DOMAIN.len() + 64 + params.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(binding);
    m.extend_from_slice(&ts.to_be_bytes());
    m.extend_from_slice(&(id.len() as u16).to_be_bytes());
    m.extend_from_slice(id.as_bytes());
    m.extend_from_slice(&(method.len() as u16).to_be_bytes());
    m.extend_from_slice(method.as_bytes());
    m.extend_from_slice(&(params.len() as u32).to_be_bytes());
    m.extend_from_slice(&params);
    m
}

impl Request {
    /// Signs a request for the session with handshake hash `binding`.
    pub fn sign(
        identity: &Identity,
        binding: &[u8; 32],
        method: &str,
        params: Value,
        id: &str,
        ts_ms: u64,
    ) -> Request {
        let signature = identity
            .sign(&signed_bytes(binding, method, &params, id, ts_ms))
            .to_bytes();
        Request {
            method: method.to_owned(),
            params,
            id: id.to_owned(),
            ts_ms,
            signature,
        }
    }

    /// Whether the signature is `key`'s, for the session with handshake hash `binding`.
    pub fn verify(&self, key: &VerifyingKey, binding: &[u8; 32]) -> bool {
        let msg = signed_bytes(binding, &self.method, &self.params, &self.id, self.ts_ms);
        key.verify(&msg, &Signature::from_bytes(&self.signature))
            .is_ok()
    }

    /// The request as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(RawRequest {
            kind: "RPC".into(),
            method: self.method.clone(),
            params: self.params.clone(),
            id: self.id.clone(),
            ts: self.ts_ms,
            signature: hex::encode(self.signature),
        })
        .unwrap_or(Value::Null)
    }

    /// The encoded request; `None` if it is over [`MAX_REQUEST`].
    pub fn encode(&self) -> Option<Vec<u8>> {
        let b = serde_json::to_vec(&self.to_json()).ok()?;
        (b.len() <= MAX_REQUEST).then_some(b)
    }

    /// Decodes and checks the form of a request. On error, the id if one could be read.
    pub fn decode(b: &[u8]) -> Result<Request, (String, RpcError)> {
        if b.len() > MAX_REQUEST {
            return Err((String::new(), RpcError::too_large("request too large")));
        }
        let raw: RawRequest = serde_json::from_slice(b).map_err(|e| {
            let id = serde_json::from_slice::<Value>(b)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
                .filter(|id| valid_id(id))
                .unwrap_or_default();
            (id, RpcError::bad(format!("malformed request: {e}")))
        })?;
        let id = raw.id;
        if !valid_id(&id) {
            return Err((String::new(), RpcError::bad("bad request id")));
        }
        let fail = |m: &str| Err((id.clone(), RpcError::bad(m)));
        if raw.kind != "RPC" {
            return fail("type must be RPC");
        }
        if !valid_method(&raw.method) {
            return fail("bad method name");
        }
        if !raw.params.is_object() {
            return fail("params must be an object");
        }
        let mut signature = [0u8; 64];
        if hex::decode_to_slice(&raw.signature, &mut signature).is_err() {
            return fail("signature must be 128 hex characters");
        }
        Ok(Request {
            method: raw.method,
            params: raw.params,
            id,
            ts_ms: raw.ts,
            signature,
        })
    }
}

impl Response {
    /// A response.
    pub fn new(id: &str, outcome: Result<Value, RpcError>) -> Response {
        Response {
            id: id.to_owned(),
            outcome,
        }
    }

    /// The response as the JSON object shells print.
    pub fn to_json(&self) -> Value {
        let (result, error) = match &self.outcome {
            Ok(v) => (Some(v.clone()), None),
            Err(e) => (
                None,
                Some(RawError {
                    code: e.code,
                    message: e.message.clone(),
                }),
            ),
        };
        serde_json::to_value(RawResponse {
            kind: "RPC_RES".into(),
            id: self.id.clone(),
            result,
            error,
        })
        .unwrap_or(Value::Null)
    }

    /// The encoded response; a result over [`MAX_RESPONSE`] becomes a 413 error.
    pub fn encode(&self) -> Vec<u8> {
        let b = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        if b.len() <= MAX_RESPONSE {
            return b;
        }
        let too_big = Response::new(&self.id, Err(RpcError::too_large("result too large")));
        serde_json::to_vec(&too_big.to_json()).unwrap_or_default()
    }

    /// Decodes a response, checking its form and bounds.
    pub fn decode(b: &[u8]) -> Result<Response, RpcError> {
        if b.len() > MAX_RESPONSE {
            return Err(RpcError::too_large("response too large"));
        }
        let raw: RawResponse = serde_json::from_slice(b)
            .map_err(|e| RpcError::bad(format!("malformed response: {e}")))?;
        if raw.kind != "RPC_RES" || !(raw.id.is_empty() || valid_id(&raw.id)) {
            return Err(RpcError::bad("malformed response"));
        }
        let outcome = match (raw.result, raw.error) {
            (Some(v), None) => Ok(v),
            (None, Some(e)) => Err(RpcError::new(e.code, crate::text::line(&e.message, 512))),
            _ => return Err(RpcError::bad("a response has a result or an error")),
        };
        Ok(Response {
            id: raw.id,
            outcome,
        })
    }
}

/// The leading `items` whose JSON fits in `budget` bytes (with a comma each), and whether
/// any were left out.
pub fn fitting(items: impl IntoIterator<Item = Value>, budget: usize) -> (Vec<Value>, bool) {
    let mut used = 0;
    let mut out = vec![];
    for v in items {
        used += serde_json::to_vec(&v)
            .map_or(usize::MAX, |b| b.len())
            .saturating_add(1);
        if used > budget {
            return (out, true);
        }
        out.push(v);
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_signature_holds_only_for_its_session_sender_and_content() {
        let alice = Identity::generate();
        let mallory = Identity::generate();
        let binding = [7u8; 32];
        let req = Request::sign(&alice, &binding, "fs.list", json!({"path": "/a"}), "r1", 5);
        let back = Request::decode(&req.encode().unwrap()).unwrap();
        assert_eq!(back, req);
        assert!(back.verify(&alice.public_key(), &binding));
        // Another session, another signer, or any changed field fails.
        assert!(!back.verify(&alice.public_key(), &[8u8; 32]));
        assert!(!back.verify(&mallory.public_key(), &binding));
        let resigned = Request::sign(
            &mallory,
            &binding,
            "fs.list",
            json!({"path": "/a"}),
            "r1",
            5,
        );
        assert!(!resigned.verify(&alice.public_key(), &binding));
        for change in [
            |r: &mut Request| r.method = "fs.read".into(),
            |r: &mut Request| r.params = json!({"path": "/b"}),
            |r: &mut Request| r.id = "r2".into(),
            |r: &mut Request| r.ts_ms = 6,
        ] {
            let mut r = req.clone();
            change(&mut r);
            assert!(!r.verify(&alice.public_key(), &binding));
        }
    }

    #[test]
    fn malformed_requests_are_refused_with_400_or_413() {
        let alice = Identity::generate();
        let ok = Request::sign(&alice, &[0; 32], "fs.list", json!({}), "x", 1).to_json();
        let cases: Vec<(Value, &str)> = vec![
            (
                {
                    let mut v = ok.clone();
                    v["type"] = json!("RPCX");
                    v
                },
                "x",
            ),
            (
                {
                    let mut v = ok.clone();
                    v["method"] = json!("FS.list");
                    v
                },
                "x",
            ),
            (
                {
                    let mut v = ok.clone();
                    v["params"] = json!([1]);
                    v
                },
                "x",
            ),
            (
                {
                    let mut v = ok.clone();
                    v["signature"] = json!("zz");
                    v
                },
                "x",
            ),
            (
                {
                    let mut v = ok.clone();
                    v["extra"] = json!(1);
                    v
                },
                "x",
            ),
            (
                {
                    let mut v = ok.clone();
                    v["id"] = json!("a b");
                    v
                },
                "",
            ),
            (
                {
                    let mut v = ok.clone();
                    v["id"] = json!("a".repeat(65));
                    v
                },
                "",
            ),
            (
                {
                    let mut v = ok.clone();
                    v["ts"] = json!(-1);
                    v
                },
                "x",
            ),
        ];
        for (v, id) in cases {
            let (got_id, e) = Request::decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
            assert_eq!((got_id.as_str(), e.code), (id, 400), "{v}");
        }
        let big = vec![b' '; MAX_REQUEST + 1];
        assert_eq!(Request::decode(&big).unwrap_err().1.code, 413);
        let huge = Request::sign(
            &alice,
            &[0; 32],
            "fs.write",
            json!({"d": "a".repeat(MAX_REQUEST)}),
            "x",
            1,
        );
        assert!(huge.encode().is_none());
    }

    #[test]
    fn responses_round_trip_and_oversized_results_become_413() {
        let ok = Response::new("a", Ok(json!({"entries": []})));
        assert_eq!(Response::decode(&ok.encode()).unwrap(), ok);
        let err = Response::new("a", Err(RpcError::denied("scope denied")));
        assert_eq!(
            err.to_json(),
            json!({"type": "RPC_RES", "id": "a", "error": {"code": 403, "message": "scope denied"}})
        );
        assert_eq!(Response::decode(&err.encode()).unwrap(), err);
        let big = Response::new("a", Ok(json!("x".repeat(MAX_RESPONSE))));
        let back = Response::decode(&big.encode()).unwrap();
        assert_eq!(back.outcome.unwrap_err().code, 413);
        assert!(Response::decode(br#"{"type":"RPC_RES","id":"a"}"#).is_err());
        assert!(
            Response::decode(
                br#"{"type":"RPC_RES","id":"a","result":1,"error":{"code":1,"message":""}}"#
            )
            .is_err()
        );
    }
}
