//! Streamed uploads over links (decision 0014, "Binary chunks"). Serving side: a checked
//! `fs.upload` opens an upload on the link it came in; its chunks are written off the link's
//! task, progress and the end are answered with upload states, and the file is placed only if
//! the grant still holds and the hash is the signed one. Calling side: a file's chunks go on
//! the link the upload was opened on, up to [`WINDOW`] bytes ahead of what the server
//! acknowledged.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::link::Link;
use super::local_file::LocalFile;
use super::rpc::Serving;
use super::{Inner, Node, NodeError, lock, unix_ms};
use crate::chat::wire::Frame;
use crate::contacts::Trust;
use crate::rpc::RpcError;
use crate::rpc::scope::Need;
use crate::rpc::store::{self as rpc_store, AuditEntry};
use crate::rpc::upload::{CHUNK, CODE_CONTINUE, CODE_DONE, Progress, Upload, UploadSpec};
use crate::rpc::wire::Request;

/// Bytes sent ahead of the server's last acknowledgement.
const WINDOW: u64 = 8 << 20;
/// How long an upload may go without news from the server.
pub(super) const STALL: Duration = Duration::from_secs(30);
/// How often a waiting upload looks whether its link ended.
const LINK_CHECK: Duration = Duration::from_millis(250);

/// The last state the server reported of one of our uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UploadState {
    pub(super) written: u64,
    pub(super) code: u16,
    pub(super) text: String,
}

pub(super) type StateTx = watch::Sender<Option<UploadState>>;

fn state(upload: u64, written: u64, code: u16, text: &str) -> Frame {
    Frame::RpcUploadState {
        upload,
        written,
        code,
        text: text.to_owned(),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(RpcError::internal(e.to_string())))
}

impl Inner {
    /// Opens the upload a checked `fs.upload` request `id` asked for, on `link`.
    pub(super) async fn open_upload(
        link: &Link,
        serving: &Arc<Serving>,
        spec: UploadSpec,
        id: &str,
    ) -> Result<Value, RpcError> {
        let (serving, id) = (serving.clone(), id.to_owned());
        let up = blocking(move || Upload::open(&serving.roots, spec, &id)).await?;
        if up.is_complete() {
            let n = blocking(move || up.finish()).await?;
            return Ok(json!({"done": true, "written": n}));
        }
        let offset = up.written();
        let (n, closed) = lock(&link.uploads).insert(up);
        if let Some(old) = closed {
            let why = "closed: too many uploads open on this session";
            let _ = link.send(&state(old, 0, 429, why)).await;
        }
        Ok(json!({"upload": n, "offset": offset, "done": false}))
    }

    /// A chunk of upload `n` from `link`, whose sender is at Trusted or Full Access.
    pub(super) async fn on_rpc_chunk(
        this: &Arc<Inner>,
        link: &Arc<Link>,
        trust: Option<Trust>,
        n: u64,
        offset: u64,
        data: Vec<u8>,
    ) {
        let (up, ended) = {
            let mut uploads = lock(&link.uploads);
            (uploads.take(n), uploads.was_opened(n))
        };
        let Some(mut up) = up else {
            // The rest of an upload that ended (its end was told) is dropped quietly.
            if !ended {
                let _ = link.send(&state(n, 0, 404, "no such upload")).await;
            }
            return;
        };
        let (id, target) = (up.request_id.clone(), up.path().to_string());
        // Trust is read for every batch of frames: lowering it stops an upload at once.
        let outcome = if trust != Some(Trust::FullAccess) {
            Err(RpcError::denied("RPC needs Full Access (trust 3)"))
        } else {
            let wrote = tokio::task::spawn_blocking(move || {
                let r = up.write(offset, &data);
                (up, r)
            })
            .await;
            match wrote {
                Err(e) => Err(RpcError::internal(e.to_string())),
                Ok((_, Err(e))) => Err(e),
                Ok((up, Ok(Progress::Complete))) => Inner::finish_upload(this, link, up).await,
                Ok((up, Ok(Progress::More(ack)))) => {
                    let written = up.written();
                    lock(&link.uploads).put(n, up);
                    if ack.is_some() {
                        let _ = link.send(&state(n, written, CODE_CONTINUE, "")).await;
                    }
                    return;
                }
            }
        };
        let (written, code, text) = match &outcome {
            Ok(w) => (*w, CODE_DONE, String::new()),
            Err(e) => (0, e.code, e.message.clone()),
        };
        this.audit(AuditEntry {
            at_ms: unix_ms(),
            fingerprint: link.fp.to_hex(),
            id,
            method: "fs.upload".into(),
            target,
            code,
            message: match outcome {
                Ok(w) => format!("placed, {w} bytes"),
                Err(e) => e.message,
            },
        })
        .await;
        let _ = link.send(&state(n, written, code, &text)).await;
    }

    /// Places a complete upload if its grant still holds; returns its size.
    async fn finish_upload(this: &Arc<Inner>, link: &Link, up: Upload) -> Result<u64, RpcError> {
        let fp = link.fp;
        let scopes = this
            .db(move |c| rpc_store::scopes_of(c, &fp))
            .await
            .map_err(|e| RpcError::internal(e.to_string()))?;
        if !scopes.iter().any(|s| s.allows(&Need::FsWrite(up.path()))) {
            return Err(RpcError::denied("scope denied"));
        }
        blocking(move || up.finish()).await
    }

    /// The state of one of our uploads, from the link it runs on.
    pub(super) fn on_upload_state(
        &self,
        link: &Link,
        upload: u64,
        written: u64,
        code: u16,
        text: String,
    ) {
        let key = (link.binding, upload);
        let mut uploads = lock(&self.rpc.uploads);
        if let Some(tx) = uploads.get(&key) {
            tx.send_replace(Some(UploadState {
                written,
                code,
                text,
            }));
            if code != CODE_CONTINUE {
                uploads.remove(&key);
            }
        }
    }
}

/// Forgets an upload's state channel when the upload ends, however it ends.
struct Registered<'a>(&'a Inner, ([u8; 32], u64));

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.0.rpc.uploads).remove(&self.1);
    }
}

impl Node {
    /// Uploads `size` bytes of `local` (whose BLAKE3 is `blake3`) to `remote` on contact
    /// `fingerprint`, from `offset` (what the peer has of an unfinished upload); `progress`
    /// gets the bytes the peer acknowledged. Returns once the file is placed.
    #[allow(clippy::too_many_arguments)]
    pub async fn rpc_upload(
        &self,
        fingerprint: &str,
        local: &LocalFile,
        remote: &str,
        size: u64,
        offset: u64,
        blake3: [u8; 32],
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<(), NodeError> {
        let link = self.rpc_link(fingerprint).await?;
        let params = json!({"path": remote, "total": size, "offset": offset,
                            "blake3": hex::encode(blake3), "overwrite": true});
        let id = crate::crypto::random_hex(12);
        let req = Request::sign(
            &self.inner.identity,
            &link.binding,
            "fs.upload",
            params,
            &id,
            unix_ms(),
        );
        let rx = self.rpc_start_on(&link, &req).await?;
        let res = match tokio::time::timeout(STALL, rx).await {
            Ok(Ok(r)) => r.outcome?,
            Ok(Err(_)) => return Err(NodeError::Stopped),
            Err(_) => {
                lock(&self.inner.rpc.pending).remove(&id);
                return Err(NodeError::Timeout(format!("fs.upload {remote}")));
            }
        };
        if res["done"] == true {
            progress(size);
            return Ok(());
        }
        let n = res["upload"]
            .as_u64()
            .ok_or_else(|| NodeError::Session("fs.upload: no upload number".into()))?;
        let (tx, mut rx) = watch::channel(None);
        lock(&self.inner.rpc.uploads).insert((link.binding, n), tx);
        let _registered = Registered(&self.inner, (link.binding, n));
        let opening = local.clone();
        let mut file = tokio::task::spawn_blocking(move || opening.open_at(offset))
            .await
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?
            .map(tokio::fs::File::from_std)
            .map_err(|e| local.error(e))?;
        let (mut pos, mut acked) = (offset, offset);
        loop {
            while pos < size && pos - acked < WINDOW {
                let len = (size - pos).min(CHUNK as u64) as usize;
                let mut data = vec![0; len];
                file.read_exact(&mut data)
                    .await
                    .map_err(|e| local.error(e))?;
                link.send(&Frame::RpcChunk {
                    upload: n,
                    offset: pos,
                    data,
                })
                .await?;
                pos += len as u64;
            }
            // News from the server, or the link's end, or a stall.
            let waited = tokio::time::Instant::now();
            loop {
                match tokio::time::timeout(LINK_CHECK, rx.changed()).await {
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => return Err(NodeError::Stopped),
                    Err(_) if link.is_closed() => {
                        return Err(NodeError::NotConnected(link.peer.clone()));
                    }
                    Err(_) if waited.elapsed() >= STALL => {
                        return Err(NodeError::Timeout(format!("upload of {remote}")));
                    }
                    Err(_) => {}
                }
            }
            let Some(s) = rx.borrow_and_update().clone() else {
                continue;
            };
            match s.code {
                CODE_CONTINUE => {
                    acked = s.written.clamp(acked, pos);
                    progress(acked);
                }
                CODE_DONE => {
                    progress(size);
                    return Ok(());
                }
                code => return Err(RpcError::new(code, s.text).into()),
            }
        }
    }
}
