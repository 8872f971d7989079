//! The file-system methods, confined to the roots the user chose (`NAME=DIR`, request paths
//! `/NAME/...`). Paths are validated before they get here ([`super::path`]); here every
//! component is checked without following links: a symbolic link anywhere under a root is
//! refused (it could leave the root or the granted glob). Writes go to a temporary file in the
//! target folder and become visible whole (hard link for "never overwrite", rename for
//! overwrite); large files are written in chunks at increasing offsets into a partial file
//! that survives a broken connection, so an upload resumes where it stopped.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::RpcError;
use super::part::{Part, Writers, lock};
use super::path::{PART_PREFIX, RpcPath};
use super::quota::Quotas;
use super::wire::{MAX_RESULT, fitting};

/// Largest chunk read or written by one request.
pub const MAX_CHUNK: usize = 40 * 1024;
/// Most entries one `fs.list` returns.
pub const MAX_LIST: usize = 1000;
/// Default largest file one write may create.
pub const DEFAULT_MAX_FILE: u64 = 4 << 30;

/// The roots a server exposes.
#[derive(Debug, Clone)]
pub struct Roots {
    roots: BTreeMap<String, PathBuf>,
    max_file: u64,
    quota: Quotas,
    writers: Arc<Mutex<Writers>>,
}

pub(super) fn io_err(e: std::io::Error) -> RpcError {
    match e.kind() {
        ErrorKind::NotFound => RpcError::not_found("no such file or folder"),
        ErrorKind::AlreadyExists => RpcError::bad("the file exists (ask to overwrite)"),
        _ => RpcError::internal(format!("file system: {e}")),
    }
}

/// What sits at a path, without following links.
enum Kind {
    Missing,
    File(fs::Metadata),
    Dir(fs::Metadata),
}

fn kind_of(p: &Path) -> Result<Kind, RpcError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(RpcError::denied("symbolic links are not followed"))
        }
        Ok(m) if m.is_dir() => Ok(Kind::Dir(m)),
        Ok(m) if m.is_file() => Ok(Kind::File(m)),
        Ok(_) => Err(RpcError::denied("not a regular file or folder")),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Kind::Missing),
        Err(e) => Err(io_err(e)),
    }
}

fn modified_ms(m: &fs::Metadata) -> u64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

fn part_name(name: &str) -> String {
    let h = blake3::hash(name.as_bytes());
    format!("{PART_PREFIX}-{}", &h.to_hex()[..16])
}

impl Roots {
    /// Roots from `NAME=DIR` pairs: names of `[a-z0-9_-]`, existing folders (resolved once).
    pub fn new(list: &[(String, PathBuf)], max_file: u64) -> Result<Roots, String> {
        let mut roots = BTreeMap::new();
        for (name, dir) in list {
            let ok = (1..=32).contains(&name.len())
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !ok {
                return Err(format!("root name {name:?}: use 1-32 of a-z 0-9 - _"));
            }
            let real = dir
                .canonicalize()
                .map_err(|e| format!("root {name}: {}: {e}", dir.display()))?;
            if !real.is_dir() {
                return Err(format!("root {name}: {} is not a folder", dir.display()));
            }
            if roots.insert(name.clone(), real).is_some() {
                return Err(format!("root {name} given twice"));
            }
        }
        Ok(Roots {
            roots,
            max_file,
            quota: Quotas::default(),
            writers: Arc::default(),
        })
    }

    /// Sets size quotas, `(root name, bytes)`, for some of the roots.
    pub fn with_quotas(mut self, quotas: &[(String, u64)]) -> Result<Roots, String> {
        if let Some((name, _)) = quotas.iter().find(|(n, _)| !self.roots.contains_key(n)) {
            return Err(format!("a quota for {name:?}, which is not a root"));
        }
        self.quota = Quotas::new(quotas);
        Ok(self)
    }

    /// The quota of a root, if it has one.
    pub fn quota(&self, root: &str) -> Option<u64> {
        self.quota.limit(root)
    }

    /// Parses `NAME=DIR`.
    pub fn parse_arg(s: &str) -> Result<(String, PathBuf), String> {
        let (n, d) = s.split_once('=').ok_or("a root is NAME=DIR")?;
        Ok((n.to_owned(), PathBuf::from(d)))
    }

    /// The root names.
    pub fn names(&self) -> Vec<String> {
        self.roots.keys().cloned().collect()
    }

    /// The real folders of the roots.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.roots.values().map(PathBuf::as_path)
    }

    /// Walks to `p`: every folder on the way must be a real folder (no link).
    fn walk(&self, p: &RpcPath, create: bool) -> Result<PathBuf, RpcError> {
        let mut cur = self
            .roots
            .get(p.root())
            .ok_or_else(|| RpcError::not_found(format!("no root named {:?}", p.root())))?
            .clone();
        let rest = p.rest();
        for seg in rest.iter().take(rest.len().saturating_sub(1)) {
            cur.push(seg);
            match kind_of(&cur)? {
                Kind::Dir(_) => {}
                Kind::File(_) => return Err(RpcError::bad("a folder on the path is a file")),
                Kind::Missing if create => fs::create_dir(&cur).map_err(io_err)?,
                Kind::Missing => return Err(RpcError::not_found("no such folder")),
            }
        }
        if let Some(last) = rest.last() {
            cur.push(last);
        }
        Ok(cur)
    }

    /// `fs.list`: the entries of a folder, by name (those after `after`, when given): as many
    /// as fit one response (at most [`MAX_LIST`]), `truncated` when more follow.
    pub fn list(&self, p: &RpcPath, after: Option<&str>) -> Result<Value, RpcError> {
        self.list_where(p, after, |_, _| true)
    }

    /// `fs.list` of a path a grant reaches only as a folder on the way: only the entries
    /// `shown(name, is_folder)` lets through; whatever is not a folder is refused alike.
    pub fn list_folder(
        &self,
        p: &RpcPath,
        after: Option<&str>,
        shown: impl Fn(&str, bool) -> bool,
    ) -> Result<Value, RpcError> {
        self.folder_on_the_way(p)?;
        self.list_where(p, after, shown)
    }

    /// Refuses `p` unless it is a folder, with one answer for a file, a link, nothing or a
    /// broken way (so a grant reaching folders only cannot probe what exists there).
    fn folder_on_the_way(&self, p: &RpcPath) -> Result<(), RpcError> {
        match self.walk(p, false).and_then(|path| kind_of(&path)) {
            Ok(Kind::Dir(_)) => Ok(()),
            _ => Err(RpcError::denied("scope denied (not a folder on the way)")),
        }
    }

    fn list_where(
        &self,
        p: &RpcPath,
        after: Option<&str>,
        shown: impl Fn(&str, bool) -> bool,
    ) -> Result<Value, RpcError> {
        let dir = self.walk(p, false)?;
        if !matches!(kind_of(&dir)?, Kind::Dir(_)) {
            return Err(RpcError::not_found("no such folder"));
        }
        let mut entries = vec![];
        for e in fs::read_dir(&dir).map_err(io_err)? {
            let e = e.map_err(io_err)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(PART_PREFIX) || after.is_some_and(|a| name.as_str() <= a) {
                continue;
            }
            let m = e.metadata().map_err(io_err)?;
            if !shown(&name, m.is_dir()) {
                continue;
            }
            let kind = if m.file_type().is_symlink() {
                "link"
            } else if m.is_dir() {
                "dir"
            } else if m.is_file() {
                "file"
            } else {
                "other"
            };
            entries.push((name, kind, m.len()));
        }
        entries.sort();
        let more = entries.len() > MAX_LIST;
        let listed = entries
            .into_iter()
            .take(MAX_LIST)
            .map(|(name, kind, size)| json!({"name": name, "kind": kind, "size": size}));
        let (entries, cut) = fitting(listed, MAX_RESULT - 64);
        Ok(json!({"entries": entries, "truncated": more || cut}))
    }

    /// `fs.stat`: what is at a path, with its BLAKE3 hash if asked, and the bytes of an
    /// unfinished upload to it.
    pub fn stat(&self, p: &RpcPath, hash: bool) -> Result<Value, RpcError> {
        let path = match self.walk(p, false) {
            Err(e) if e.code == 404 => return Ok(json!({"exists": false, "partial": 0})),
            other => other?,
        };
        let partial = match path.parent().zip(p.rest().last()) {
            Some((dir, name)) => match kind_of(&dir.join(part_name(name)))? {
                Kind::File(m) => m.len(),
                _ => 0,
            },
            None => 0,
        };
        Ok(match kind_of(&path)? {
            Kind::Missing => json!({"exists": false, "partial": partial}),
            Kind::Dir(m) => json!({"exists": true, "kind": "dir", "modified_ms": modified_ms(&m)}),
            Kind::File(m) => {
                let mut v = json!({"exists": true, "kind": "file", "size": m.len(),
                                   "modified_ms": modified_ms(&m), "partial": partial});
                if hash {
                    let mut h = blake3::Hasher::new();
                    h.update_reader(File::open(&path).map_err(io_err)?)
                        .map_err(io_err)?;
                    v["blake3"] = json!(h.finalize().to_hex().to_string());
                }
                v
            }
        })
    }

    /// `fs.stat` of a path a grant reaches only as a folder on the way: a folder is told as
    /// [`Self::stat`] tells it; anything else (a file, nothing) is the same 403.
    pub fn stat_folder(&self, p: &RpcPath) -> Result<Value, RpcError> {
        self.folder_on_the_way(p)?;
        self.stat(p, false)
    }

    /// `fs.read`: up to [`MAX_CHUNK`] bytes from `offset`.
    pub fn read(&self, p: &RpcPath, offset: u64, length: usize) -> Result<Value, RpcError> {
        let path = self.walk(p, false)?;
        let Kind::File(m) = kind_of(&path)? else {
            return Err(RpcError::not_found("no such file"));
        };
        let mut f = File::open(&path).map_err(io_err)?;
        f.seek(SeekFrom::Start(offset)).map_err(io_err)?;
        let mut buf = vec![0u8; length.min(MAX_CHUNK)];
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]).map_err(io_err)? {
                0 => break,
                k => n += k,
            }
        }
        buf.truncate(n);
        let size = m.len();
        Ok(json!({
            "data_b64": super::b64::encode(&buf),
            "offset": offset,
            "size": size,
            "eof": offset + n as u64 >= size,
        }))
    }

    /// `fs.write`: the whole file in one request (`offset` `None`), or one chunk of a
    /// streamed upload of `total` bytes (chunks in order; the file appears after the last).
    pub fn write(
        &self,
        p: &RpcPath,
        data: &[u8],
        overwrite: bool,
        chunk: Option<(u64, u64)>,
    ) -> Result<Value, RpcError> {
        if data.len() > MAX_CHUNK {
            return Err(RpcError::too_large(format!(
                "at most {MAX_CHUNK} bytes per write"
            )));
        }
        let (offset, total) = chunk.unwrap_or((0, data.len() as u64));
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= total)
            .ok_or_else(|| RpcError::bad("the chunk goes past the total size"))?;
        if chunk.is_some() && end < total && data.is_empty() {
            return Err(RpcError::bad("an empty chunk before the end"));
        }
        let mut part = self.open_part(p, total, offset, overwrite)?;
        part.write(data)?;
        if end < total {
            return Ok(json!({"written": end, "done": false}));
        }
        part.place(overwrite)?;
        Ok(json!({"written": end, "done": true}))
    }

    /// Opens the partial file of an upload of `total` bytes to `p`, positioned at `offset`:
    /// a fresh one at 0, else the one an earlier writer left (cut to `offset` if longer).
    /// Checks the file limit, the root's quota, the folders on the way and the target.
    pub(super) fn open_part(
        &self,
        p: &RpcPath,
        total: u64,
        offset: u64,
        overwrite: bool,
    ) -> Result<Part, RpcError> {
        if total > self.max_file {
            return Err(RpcError::too_large(format!(
                "files are limited to {} bytes here",
                self.max_file
            )));
        }
        if offset > total {
            return Err(RpcError::bad("the offset is past the total size"));
        }
        if p.rest().is_empty() {
            return Err(RpcError::bad("a root cannot be written"));
        }
        let target = self.walk(p, true)?;
        let target_exists = match kind_of(&target)? {
            Kind::Dir(_) => return Err(RpcError::bad("a folder is at that path")),
            Kind::File(_) => true,
            Kind::Missing => false,
        };
        if target_exists && !overwrite {
            return Err(RpcError::bad("the file exists (ask to overwrite)"));
        }
        let dir = target.parent().expect("a path below a root").to_owned();
        let name = p.rest().last().expect("checked");
        let part = dir.join(part_name(name));
        let part_len = match kind_of(&part)? {
            Kind::File(m) => Some(m.len()),
            _ => None,
        };
        if offset > 0 && part_len.is_none_or(|n| n < offset) {
            return Err(RpcError::bad(format!(
                "offset {offset} does not continue the upload ({} bytes so far)",
                part_len.unwrap_or(0)
            )));
        }
        // What the upload adds once the partial file is cut to `offset`.
        let cut = part_len.map_or(0, |n| n - offset.min(n));
        let reservation = self
            .quota
            .reserve(p.root(), self.root_dir(p), total - offset, cut)?;
        // Held while the partial file is replaced or cut: an earlier writer of it is stopped.
        let mut writers = lock(&self.writers);
        let mut file = if offset == 0 {
            // A new upload (or a restart of one) begins a fresh partial file.
            if part_len.is_some() {
                fs::remove_file(&part).map_err(io_err)?;
            }
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&part)
                .map_err(io_err)?
        } else {
            let f = OpenOptions::new().write(true).open(&part).map_err(io_err)?;
            if cut > 0 {
                // A resumed upload restarts inside what an interrupted writer left: that
                // writer's last chunks can still land after the resumer read the size. The
                // resumer's bytes win: the earlier writer may not write from now on.
                f.set_len(offset).map_err(io_err)?;
            }
            f
        };
        file.seek(SeekFrom::Start(offset)).map_err(io_err)?;
        let generation = writers.claim(&part);
        drop(writers);
        Ok(Part::new(
            [target, part, dir],
            file,
            reservation,
            (self.writers.clone(), generation),
        ))
    }

    fn root_dir(&self, p: &RpcPath) -> &Path {
        self.roots
            .get(p.root())
            .map_or(Path::new(""), PathBuf::as_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir, Roots) {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("photos")).unwrap();
        fs::write(root.path().join("photos/a.jpg"), b"jpeg").unwrap();
        fs::write(outside.path().join("secret"), b"secret").unwrap();
        let roots = Roots::new(&[("public".into(), root.path().into())], 1 << 20).unwrap();
        (root, outside, roots)
    }

    fn p(s: &str) -> RpcPath {
        RpcPath::parse(s).unwrap()
    }

    #[test]
    fn reads_lists_and_stats_inside_the_root() {
        let (_r, _o, roots) = setup();
        let v = roots.read(&p("/public/photos/a.jpg"), 0, 100).unwrap();
        assert_eq!(v["data_b64"], super::super::b64::encode(b"jpeg"));
        assert_eq!(v["eof"], true);
        let v = roots.read(&p("/public/photos/a.jpg"), 2, 1).unwrap();
        assert_eq!(v["data_b64"], super::super::b64::encode(b"e"));
        let v = roots.list(&p("/public"), None).unwrap();
        assert_eq!(v["entries"][0]["name"], "photos");
        assert_eq!(v["entries"][0]["kind"], "dir");
        let v = roots.stat(&p("/public/photos/a.jpg"), true).unwrap();
        assert_eq!(v["size"], 4);
        assert_eq!(v["blake3"], blake3::hash(b"jpeg").to_hex().to_string());
        assert_eq!(
            roots.stat(&p("/public/nope"), false).unwrap()["exists"],
            false
        );
        assert_eq!(roots.read(&p("/public/nope"), 0, 1).unwrap_err().code, 404);
        assert_eq!(roots.read(&p("/other/a"), 0, 1).unwrap_err().code, 404);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_leaving_the_root_are_refused() {
        let (r, o, roots) = setup();
        std::os::unix::fs::symlink(o.path().join("secret"), r.path().join("link")).unwrap();
        std::os::unix::fs::symlink(o.path(), r.path().join("out")).unwrap();
        assert_eq!(
            roots.read(&p("/public/link"), 0, 100).unwrap_err().code,
            403
        );
        assert_eq!(
            roots
                .read(&p("/public/out/secret"), 0, 100)
                .unwrap_err()
                .code,
            403
        );
        assert_eq!(roots.list(&p("/public/out"), None).unwrap_err().code, 403);
        assert_eq!(
            roots.stat(&p("/public/out/secret"), true).unwrap_err().code,
            403
        );
        let e = roots
            .write(&p("/public/out/new"), b"x", false, None)
            .unwrap_err();
        assert_eq!(e.code, 403);
        let e = roots
            .write(&p("/public/link"), b"x", true, None)
            .unwrap_err();
        assert_eq!(e.code, 403);
        // Nothing outside changed.
        assert_eq!(fs::read(o.path().join("secret")).unwrap(), b"secret");
        assert_eq!(fs::read_dir(o.path()).unwrap().count(), 1);
    }

    #[test]
    fn writes_are_whole_never_overwrite_unless_asked_and_respect_the_quota() {
        let (r, _o, roots) = setup();
        roots
            .write(&p("/public/new/deep/x.txt"), b"one", false, None)
            .unwrap();
        assert_eq!(fs::read(r.path().join("new/deep/x.txt")).unwrap(), b"one");
        let e = roots
            .write(&p("/public/new/deep/x.txt"), b"two", false, None)
            .unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(fs::read(r.path().join("new/deep/x.txt")).unwrap(), b"one");
        roots
            .write(&p("/public/new/deep/x.txt"), b"two", true, None)
            .unwrap();
        assert_eq!(fs::read(r.path().join("new/deep/x.txt")).unwrap(), b"two");
        let big = vec![0u8; MAX_CHUNK + 1];
        assert_eq!(
            roots
                .write(&p("/public/b"), &big, false, None)
                .unwrap_err()
                .code,
            413
        );
        let e = roots
            .write(&p("/public/b"), b"x", false, Some((0, 2 << 20)))
            .unwrap_err();
        assert_eq!(e.code, 413);
        assert_eq!(
            roots
                .write(&p("/public"), b"x", false, None)
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            roots
                .write(&p("/public/photos"), b"x", true, None)
                .unwrap_err()
                .code,
            400
        );
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(r.path().join("new/deep")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn streamed_uploads_resume_and_appear_only_when_complete() {
        let (r, _o, roots) = setup();
        let target = p("/public/big.bin");
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut off = 0usize;
        for c in data[..60_000].chunks(MAX_CHUNK) {
            let v = roots
                .write(&target, c, false, Some((off as u64, data.len() as u64)))
                .unwrap();
            off += c.len();
            assert_eq!(v["done"], false);
        }
        assert!(!r.path().join("big.bin").exists());
        assert_eq!(roots.stat(&target, false).unwrap()["partial"], 60_000);
        // A chunk leaving a gap is refused.
        let e = roots
            .write(&target, b"x", false, Some((70_000, data.len() as u64)))
            .unwrap_err();
        assert_eq!(e.code, 400);
        // A resumer that read a smaller size (an interrupted writer's last chunks landed
        // after it asked) restarts inside the partial file: its bytes replace the rest.
        roots
            .write(
                &target,
                b"garbage",
                false,
                Some((30_000, data.len() as u64)),
            )
            .unwrap();
        assert_eq!(roots.stat(&target, false).unwrap()["partial"], 30_007);
        off = 30_000;
        for c in data[off..].chunks(MAX_CHUNK) {
            roots
                .write(&target, c, false, Some((off as u64, data.len() as u64)))
                .unwrap();
            off += c.len();
        }
        assert_eq!(fs::read(r.path().join("big.bin")).unwrap(), data);
        assert_eq!(roots.stat(&target, false).unwrap()["partial"], 0);
        let e = roots.write(&target, b"x", false, Some((0, 1))).unwrap_err();
        assert_eq!(e.code, 400);
        let e = roots
            .write(&target, b"xy", false, Some((0, 1)))
            .unwrap_err();
        assert_eq!(e.code, 400);
    }

    #[test]
    fn writes_beyond_the_roots_quota_are_413_and_leave_nothing() {
        let (r, _o, roots) = setup();
        // 4 bytes are there already (photos/a.jpg).
        let roots = roots.with_quotas(&[("public".into(), 10)]).unwrap();
        roots.write(&p("/public/a"), b"123", false, None).unwrap();
        let e = roots
            .write(&p("/public/b"), b"1234", false, None)
            .unwrap_err();
        assert_eq!(e.code, 413);
        // A streamed upload counts its whole announced size from the first chunk.
        let e = roots
            .write(&p("/public/c"), b"1", false, Some((0, 4)))
            .unwrap_err();
        assert_eq!(e.code, 413);
        roots
            .write(&p("/public/c"), b"1", false, Some((0, 3)))
            .unwrap();
        assert_eq!(fs::read_dir(r.path()).unwrap().count(), 3);
        assert!(!r.path().join("b").exists());
        assert!(roots.with_quotas(&[("nope".into(), 1)]).is_err());
    }

    #[test]
    fn roots_are_checked() {
        let d = tempfile::tempdir().unwrap();
        assert!(Roots::new(&[("Public".into(), d.path().into())], 1).is_err());
        assert!(Roots::new(&[("a/b".into(), d.path().into())], 1).is_err());
        assert!(Roots::new(&[("a".into(), d.path().join("missing"))], 1).is_err());
        assert!(
            Roots::new(
                &[("a".into(), d.path().into()), ("a".into(), d.path().into())],
                1
            )
            .is_err()
        );
        assert_eq!(
            Roots::parse_arg("a=/x").unwrap(),
            ("a".into(), PathBuf::from("/x"))
        );
    }

    #[test]
    fn a_large_folder_is_listed_in_pages_that_fit_a_response() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots::new(&[("pics".into(), dir.path().into())], 1 << 20).unwrap();
        let names: Vec<String> = (0..1000)
            .map(|i| format!("IMG_20261207_{i:06}_HDR_portrait_mode.jpg"))
            .collect();
        for n in &names {
            fs::write(dir.path().join(n), b"").unwrap();
        }
        let (mut seen, mut after, mut pages) = (vec![], None::<String>, 0);
        loop {
            let v = roots.list(&p("/pics"), after.as_deref()).unwrap();
            let r = super::super::wire::Response::new("i", Ok(v.clone()));
            assert!(
                super::super::wire::Response::decode(&r.encode())
                    .unwrap()
                    .outcome
                    .is_ok()
            );
            let entries = v["entries"].as_array().unwrap();
            seen.extend(
                entries
                    .iter()
                    .map(|e| e["name"].as_str().unwrap().to_owned()),
            );
            pages += 1;
            if v["truncated"] == false {
                break;
            }
            after = seen.last().cloned();
        }
        assert!(pages > 1);
        assert_eq!(seen, names);
    }
}
