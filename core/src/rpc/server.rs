//! What a request asks, checked against the grants: the typed call parsed from `method` and
//! `params` (strictly: unknown methods are 404, unknown or malformed parameters 400), the scope
//! it needs, and the parts of running it that need no node (files, device status).

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::RpcError;
use super::fs::{MAX_CHUNK, Roots};
use super::path::RpcPath;
use super::scope::{Facing, Need, Reach, Scope, SysItem};
use super::store::SyncedMessage;
use super::upload::UploadSpec;
use super::wire::{MAX_RESULT, fitting};
use crate::store::StoreError;

/// Longest `after` of `fs.list`, in bytes (a file name).
const MAX_NAME: usize = 1024;
/// Most messages one `db.messages` returns.
pub const MAX_MESSAGES: usize = 200;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `fs.list {path, after?}`: the entries after the name `after`, when given.
    FsList(RpcPath, Option<String>),
    /// `fs.stat {path, hash?}`.
    FsStat(RpcPath, bool),
    /// `fs.read {path, offset?, length?}`.
    FsRead(RpcPath, u64, usize),
    /// `fs.write {path, data_b64, overwrite?, offset?, total?}`.
    FsWrite {
        /// Target.
        path: RpcPath,
        /// Bytes.
        data: Vec<u8>,
        /// Replace an existing file.
        overwrite: bool,
        /// Streamed form: (offset, total).
        chunk: Option<(u64, u64)>,
    },
    /// `fs.upload {path, total, blake3, offset?, overwrite?}`: opens a streamed upload whose
    /// bytes follow in binary chunks on the same session.
    FsUpload(UploadSpec),
    /// `db.messages {since, limit?}`.
    DbMessages(u64, usize),
    /// `sys.status {what}`.
    SysStatus(SysItem),
    /// `media.stream {facing}`.
    MediaStream(Facing),
}

struct Params(Map<String, Value>);

impl Params {
    fn take(&mut self, k: &str) -> Option<Value> {
        self.0.remove(k)
    }
    fn path(&mut self) -> Result<RpcPath, RpcError> {
        match self.take("path") {
            Some(Value::String(s)) => RpcPath::parse(&s),
            _ => Err(RpcError::bad("params.path must be a string")),
        }
    }
    fn u64_or(&mut self, k: &str, default: Option<u64>) -> Result<u64, RpcError> {
        match (self.take(k), default) {
            (Some(v), _) => v
                .as_u64()
                .ok_or_else(|| RpcError::bad(format!("params.{k} must be a non-negative integer"))),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(RpcError::bad(format!("params.{k} is required"))),
        }
    }
    fn bool_or(&mut self, k: &str) -> Result<bool, RpcError> {
        match self.take(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(RpcError::bad(format!("params.{k} must be true or false"))),
        }
    }
    fn str(&mut self, k: &str) -> Result<String, RpcError> {
        match self.take(k) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(RpcError::bad(format!("params.{k} must be a string"))),
        }
    }
    fn done(self) -> Result<(), RpcError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(RpcError::bad(format!("unknown parameter {k:?}"))),
        }
    }
}

impl Call {
    /// Parses a request's method and params.
    pub fn parse(method: &str, params: &Value) -> Result<Call, RpcError> {
        let mut p = Params(params.as_object().cloned().unwrap_or_default());
        let call = match method {
            "fs.list" => {
                let path = p.path()?;
                let after = match p.take("after") {
                    None => None,
                    Some(Value::String(s)) if s.len() <= MAX_NAME => Some(s),
                    Some(_) => return Err(RpcError::bad("params.after must be a name")),
                };
                Call::FsList(path, after)
            }
            "fs.stat" => {
                let path = p.path()?;
                Call::FsStat(path, p.bool_or("hash")?)
            }
            "fs.read" => {
                let path = p.path()?;
                let offset = p.u64_or("offset", Some(0))?;
                let length = p.u64_or("length", Some(MAX_CHUNK as u64))?;
                Call::FsRead(path, offset, length.min(MAX_CHUNK as u64) as usize)
            }
            "fs.write" => {
                let path = p.path()?;
                let data = super::b64::decode(&p.str("data_b64")?)
                    .ok_or_else(|| RpcError::bad("params.data_b64 is not base64"))?;
                let overwrite = p.bool_or("overwrite")?;
                let chunk = match (p.take("offset"), p.take("total")) {
                    (None, None) => None,
                    (Some(o), Some(t)) => Some((
                        o.as_u64().ok_or_else(|| RpcError::bad("params.offset"))?,
                        t.as_u64().ok_or_else(|| RpcError::bad("params.total"))?,
                    )),
                    _ => return Err(RpcError::bad("offset and total go together")),
                };
                Call::FsWrite {
                    path,
                    data,
                    overwrite,
                    chunk,
                }
            }
            "fs.upload" => {
                let path = p.path()?;
                let total = p.u64_or("total", None)?;
                let offset = p.u64_or("offset", Some(0))?;
                let mut blake3 = [0u8; 32];
                hex::decode_to_slice(p.str("blake3")?, &mut blake3)
                    .map_err(|_| RpcError::bad("params.blake3 must be 64 hex characters"))?;
                let overwrite = p.bool_or("overwrite")?;
                if offset > total {
                    return Err(RpcError::bad("params.offset is past params.total"));
                }
                Call::FsUpload(UploadSpec {
                    path,
                    total,
                    offset,
                    blake3,
                    overwrite,
                })
            }
            "db.messages" => {
                let since = p.u64_or("since", None)?;
                // Times are stored as i64: a larger `since` would wrap in the query.
                if since > i64::MAX as u64 {
                    return Err(RpcError::bad("params.since is too large"));
                }
                let limit = p.u64_or("limit", Some(MAX_MESSAGES as u64))?;
                Call::DbMessages(since, limit.min(MAX_MESSAGES as u64) as usize)
            }
            "sys.status" => {
                let what = p.str("what")?;
                Call::SysStatus(
                    SysItem::parse(&what)
                        .ok_or_else(|| RpcError::bad("what: battery, storage or network"))?,
                )
            }
            "media.stream" => {
                let f = p.str("facing")?;
                Call::MediaStream(
                    Facing::parse(&f)
                        .ok_or_else(|| RpcError::bad("facing: environment or user"))?,
                )
            }
            m => return Err(RpcError::not_found(format!("no method {m:?}"))),
        };
        p.done()?;
        Ok(call)
    }

    /// The scope the call needs.
    pub fn need(&self) -> Need<'_> {
        match self {
            Call::FsList(p, _) => Need::FsList(p),
            Call::FsStat(p, _) => Need::FsStat(p),
            Call::FsRead(p, ..) => Need::FsRead(p),
            Call::FsWrite { path, .. } | Call::FsUpload(UploadSpec { path, .. }) => {
                Need::FsWrite(path)
            }
            Call::DbMessages(since, _) => Need::Messages(*since),
            Call::SysStatus(i) => Need::Sys(*i),
            Call::MediaStream(f) => Need::Camera(*f),
        }
    }

    /// What the audit log names as the target.
    pub fn target(&self) -> String {
        match self {
            Call::FsList(p, _) | Call::FsStat(p, _) | Call::FsRead(p, ..) => p.to_string(),
            Call::FsWrite { path, .. } | Call::FsUpload(UploadSpec { path, .. }) => {
                path.to_string()
            }
            Call::DbMessages(since, _) => format!("messages:timestamp>{since}"),
            Call::SysStatus(i) => i.name().to_owned(),
            Call::MediaStream(f) => format!("camera:{}", f.name()),
        }
    }

    /// How far `scopes` let the call reach (the most any of them allows).
    pub fn reach(&self, scopes: &[Scope]) -> Reach {
        let need = self.need();
        scopes
            .iter()
            .map(|s| s.reach(&need))
            .max()
            .unwrap_or(Reach::None)
    }

    /// Runs a file-system call (blocking) as far as `reach` (what `scopes` allow it) goes;
    /// `None` for other calls. A folder reached only on the way lists its sub-folders on the
    /// way and what the globs match, nothing else.
    pub fn run_fs(
        &self,
        roots: &Roots,
        reach: Reach,
        scopes: &[Scope],
    ) -> Option<Result<Value, RpcError>> {
        Some(match self {
            Call::FsList(p, after) if reach == Reach::Folder => {
                roots.list_folder(p, after.as_deref(), |name, folder| {
                    p.child(name).is_ok_and(|c| {
                        let need = Need::FsStat(&c);
                        let r = scopes.iter().map(|s| s.reach(&need)).max();
                        r == Some(Reach::Full) || (folder && r == Some(Reach::Folder))
                    })
                })
            }
            Call::FsList(p, after) => roots.list(p, after.as_deref()),
            Call::FsStat(p, _) if reach == Reach::Folder => roots.stat_folder(p),
            Call::FsStat(p, hash) => roots.stat(p, *hash),
            Call::FsRead(p, offset, len) => roots.read(p, *offset, *len),
            Call::FsWrite {
                path,
                data,
                overwrite,
                chunk,
            } => roots.write(path, data, *overwrite, *chunk),
            _ => return None,
        })
    }
}

/// `db.messages`: up to `limit` messages sent after `since` that fit one response (read one
/// more, to know whether the limit cut the page), as [`messages_result`] gives them.
pub fn messages_page(conn: &Connection, since: u64, limit: usize) -> Result<Value, StoreError> {
    let msgs = super::store::messages_after(conn, since, limit.saturating_add(1))?;
    Ok(messages_result(&msgs, limit))
}

/// `db.messages`'s result from the first `limit` of `msgs`: those that fit one response,
/// `truncated` when some were left out (by the limit or the size). Then the last time sent is
/// left out whole (unless it is all there is), so a request with `since` = the last `sent_ms`
/// returned gets exactly the rest.
pub fn messages_result(msgs: &[SyncedMessage], limit: usize) -> Value {
    let values = msgs
        .iter()
        .take(limit)
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null));
    let (mut fit, cut) = fitting(values, MAX_RESULT - 64);
    let cut = cut || msgs.len() > limit;
    if let Some(next) = msgs.get(fit.len()).filter(|_| cut) {
        let keep = msgs[..fit.len()]
            .iter()
            .position(|m| m.sent_ms == next.sent_ms)
            .unwrap_or(fit.len());
        if keep > 0 {
            fit.truncate(keep);
        }
    }
    json!({"messages": fit, "truncated": cut})
}

/// The battery as Linux reports it (`/sys/class/power_supply`), if there is one.
pub fn battery_status() -> Value {
    let Ok(dir) = std::fs::read_dir("/sys/class/power_supply") else {
        return json!({"available": false});
    };
    for e in dir.flatten() {
        let p = e.path();
        let read = |f: &str| std::fs::read_to_string(p.join(f)).map(|s| s.trim().to_owned());
        if read("type").is_ok_and(|t| t == "Battery")
            && let Ok(cap) = read("capacity")
        {
            return json!({
                "available": true,
                "percent": cap.parse::<u8>().ok(),
                "status": read("status").unwrap_or_default(),
            });
        }
    }
    json!({"available": false})
}

/// Free and total bytes of the file systems of the roots.
pub fn storage_status(roots: &Roots) -> Value {
    let mut out = vec![];
    for (name, dir) in roots.names().into_iter().zip(roots.dirs()) {
        match disk_space(dir) {
            Some((free, total)) => out.push(json!({"root": name, "free": free, "total": total})),
            None => out.push(json!({"root": name})),
        }
    }
    json!({"roots": out})
}

#[cfg(unix)]
fn disk_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path; `st` is written by statvfs on success.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let unit = st.f_frsize as u64;
    Some((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}

#[cfg(not(unix))]
fn disk_space(_: &std::path::Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_parse_strictly() {
        let ok = |m: &str, v: Value| Call::parse(m, &v).unwrap();
        let err = |m: &str, v: Value| Call::parse(m, &v).unwrap_err().code;
        assert!(matches!(
            ok("fs.list", json!({"path": "/a"})),
            Call::FsList(_, None)
        ));
        assert!(matches!(
            ok("fs.list", json!({"path": "/a", "after": "b.jpg"})),
            Call::FsList(_, Some(a)) if a == "b.jpg"
        ));
        assert_eq!(err("fs.list", json!({"path": "/a", "after": 3})), 400);
        assert_eq!(
            err("fs.list", json!({"path": "/a", "after": "x".repeat(1025)})),
            400
        );
        assert_eq!(
            ok("fs.read", json!({"path": "/a/b", "length": 1_000_000})),
            Call::FsRead(RpcPath::parse("/a/b").unwrap(), 0, MAX_CHUNK)
        );
        assert!(matches!(
            ok(
                "fs.write",
                json!({"path": "/a/b", "data_b64": "Zm9v", "offset": 0, "total": 9})
            ),
            Call::FsWrite {
                chunk: Some((0, 9)),
                ..
            }
        ));
        let h = "ab".repeat(32);
        assert!(matches!(
            ok(
                "fs.upload",
                json!({"path": "/a/b", "total": 9, "blake3": h})
            ),
            Call::FsUpload(UploadSpec {
                total: 9,
                offset: 0,
                overwrite: false,
                ..
            })
        ));
        assert_eq!(
            err(
                "fs.upload",
                json!({"path": "/a/b", "total": 9, "blake3": "ab"})
            ),
            400
        );
        assert_eq!(
            err(
                "fs.upload",
                json!({"path": "/a/b", "total": 9, "offset": 10, "blake3": h})
            ),
            400
        );
        assert_eq!(err("fs.upload", json!({"path": "/a/b", "blake3": h})), 400);
        assert_eq!(err("fs.nope", json!({})), 404);
        assert_eq!(err("fs.list", json!({})), 400);
        assert_eq!(err("fs.list", json!({"path": "/a/../b"})), 400);
        assert_eq!(err("fs.list", json!({"path": "/a", "x": 1})), 400);
        assert_eq!(
            err("fs.write", json!({"path": "/a/b", "data_b64": "%%"})),
            400
        );
        assert_eq!(
            err(
                "fs.write",
                json!({"path": "/a/b", "data_b64": "", "offset": 1})
            ),
            400
        );
        assert_eq!(err("db.messages", json!({"since": -1})), 400);
        assert_eq!(err("db.messages", json!({"since": u64::MAX})), 400);
        assert_eq!(err("db.messages", json!({"since": 1u64 << 63})), 400);
        assert!(matches!(
            ok("db.messages", json!({"since": i64::MAX})),
            Call::DbMessages(s, _) if s == i64::MAX as u64
        ));
        assert_eq!(err("sys.status", json!({"what": "cpu"})), 400);
        assert_eq!(err("media.stream", json!({"facing": "back"})), 400);
    }

    #[test]
    fn calls_need_their_scope() {
        let scopes = [
            Scope::parse("fs:write:/incoming/**").unwrap(),
            Scope::parse("sys:status:battery").unwrap(),
        ];
        let c = |m: &str, v: Value| Call::parse(m, &v).unwrap();
        let full = |c: Call| c.reach(&scopes) == Reach::Full;
        assert!(full(c(
            "fs.write",
            json!({"path": "/incoming/a", "data_b64": ""})
        )));
        assert!(full(c("fs.stat", json!({"path": "/incoming/a"}))));
        assert!(!full(c("fs.read", json!({"path": "/incoming/a"}))));
        let up = json!({"path": "/incoming/a", "total": 1, "blake3": "00".repeat(32)});
        assert!(full(c("fs.upload", up)));
        let up = json!({"path": "/public/a", "total": 1, "blake3": "00".repeat(32)});
        assert!(!full(c("fs.upload", up)));
        assert!(!full(c("fs.list", json!({"path": "/incoming"}))));
        assert!(full(c("sys.status", json!({"what": "battery"}))));
        assert!(!full(c("sys.status", json!({"what": "storage"}))));
        assert!(!full(c("media.stream", json!({"facing": "user"}))));
        assert!(!full(c("db.messages", json!({"since": 0}))));
        assert_eq!(
            c("db.messages", json!({"since": 5})).target(),
            "messages:timestamp>5"
        );
    }

    #[test]
    fn folders_on_the_way_show_only_sub_folders_and_matches_and_hide_what_else_exists() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a/b/c", "z"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for f in ["a/b/keep.txt", "a/b/secret.txt", "top.txt"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let roots = Roots::new(&[("public".into(), dir.path().into())], 1 << 20).unwrap();
        let scopes = [Scope::parse("fs:read:/public/a/**/keep.txt").unwrap()];
        let run = |m: &str, path: &str| {
            let call = Call::parse(m, &json!({ "path": path })).unwrap();
            let reach = call.reach(&scopes);
            call.run_fs(&roots, reach, &scopes).unwrap()
        };
        let names = |path: &str| -> Vec<String> {
            let v = run("fs.list", path).unwrap();
            let e = v["entries"].as_array().unwrap();
            e.iter()
                .map(|e| e["name"].as_str().unwrap().into())
                .collect()
        };
        assert_eq!(names("/public"), ["a"]);
        assert_eq!(names("/public/a/b"), ["c", "keep.txt"]);
        assert!(run("fs.stat", "/public/a/b/keep.txt").is_ok());
        // A file the glob does not match answers as nothing there does, for stat and list.
        let refused = |m, p| run(m, p).unwrap_err();
        let secret = refused("fs.stat", "/public/a/b/secret.txt");
        assert_eq!(secret.code, 403);
        for (m, p) in [
            ("fs.stat", "/public/a/b/missing.txt"),
            ("fs.stat", "/public/a/nope/missing.txt"),
            ("fs.list", "/public/a/b/secret.txt"),
            ("fs.list", "/public/a/b/missing.txt"),
        ] {
            assert_eq!(refused(m, p), secret, "{m} {p}");
        }
    }

    #[test]
    fn a_page_cut_by_the_limit_ends_before_its_last_time_so_paging_skips_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path().join("db")).unwrap();
        let (me, them) = (
            crate::identity::Identity::generate(),
            crate::identity::Identity::generate(),
        );
        let key = them.public_key().to_bytes();
        let trust = crate::contacts::Trust::FullAccess;
        let times = [5000, 6000, 6000, 7000, 7000];
        store
            .with_conn(|c| {
                crate::contacts::save(c, &key, "phone", trust, None, 1).unwrap();
                for t in times {
                    let kind = crate::chat::wire::OpKind::Text;
                    let (me, fp) = (me.fingerprint(), them.fingerprint());
                    crate::chat::store::enqueue(c, &me, &fp, kind, None, b"hi", t).unwrap();
                }
                Ok(())
            })
            .unwrap();
        let page = |since| store.with_conn(|c| messages_page(c, since, 2)).unwrap();
        // The limit cuts inside 6000: only 5000 comes, with more to follow.
        let v = page(0);
        assert_eq!(v["truncated"], true);
        let (mut since, mut got) = (0, vec![]);
        loop {
            let v = page(since);
            let msgs = v["messages"].as_array().unwrap().clone();
            got.extend(msgs.iter().map(|m| m["sent_ms"].as_u64().unwrap()));
            if v["truncated"] == false {
                break;
            }
            since = *got.last().unwrap();
        }
        assert_eq!(got, times);
    }

    #[test]
    fn large_messages_stop_before_the_response_limit_at_a_whole_time() {
        let msg = |sent_ms| SyncedMessage {
            conversation: "c".into(),
            outgoing: false,
            seq: sent_ms,
            sent_ms,
            text: "x".repeat(20_000),
        };
        // Two messages per time, five times: 200 KB, far over one response.
        let msgs: Vec<_> = (0..10).map(|i| msg(i / 2)).collect();
        let v = messages_result(&msgs, MAX_MESSAGES);
        assert_eq!(v["truncated"], true);
        let got = v["messages"].as_array().unwrap();
        // Three fit; the third's time (1) has a fourth left out: only time 0 is returned.
        assert_eq!(got.len(), 2, "{}", got.len());
        assert!(got.iter().all(|m| m["sent_ms"] == 0));
        let all = messages_result(&msgs[..2], MAX_MESSAGES);
        assert_eq!(
            (
                all["truncated"].clone(),
                all["messages"].as_array().unwrap().len()
            ),
            (json!(false), 2)
        );
        let r = super::super::wire::Response::new("i", Ok(v));
        assert!(r.encode().len() <= super::super::wire::MAX_RESPONSE);
        assert!(
            super::super::wire::Response::decode(&r.encode())
                .unwrap()
                .outcome
                .is_ok()
        );
    }
}
