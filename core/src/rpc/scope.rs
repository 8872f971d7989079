//! Scopes `category:action:resource`, parsed once into a typed form:
//!
//! - `fs:read|write|list:/root/glob` — `*` matches within one segment, `**` (a whole
//!   segment) any number of segments. `read` also allows `list` and `stat`; `write` allows
//!   `stat` of the paths it may write (to resume and skip).
//! - `db:read:messages` or `db:read:messages:timestamp>T` (only messages after `T`, Unix ms).
//! - `media:stream:camera:environment|user|*`.
//! - `sys:status:battery|storage|network|*`.
//!
//! Matching is byte-exact on validated paths ([`super::path`]): no case folding, no decoding.

use std::fmt;

use super::RpcError;
use super::path::{RpcPath, split};

/// Longest scope string, in bytes.
pub const MAX_SCOPE: usize = 1100;

/// What a file-system scope allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsAction {
    /// Read files, list folders, stat.
    Read,
    /// Write files (and stat what may be written).
    Write,
    /// List folders and stat.
    List,
}

/// A camera facing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facing {
    /// The back camera.
    Environment,
    /// The front camera.
    User,
}

impl Facing {
    /// `environment` or `user`.
    pub fn parse(s: &str) -> Option<Facing> {
        match s {
            "environment" => Some(Facing::Environment),
            "user" => Some(Facing::User),
            _ => None,
        }
    }

    /// The name in scopes.
    pub fn name(self) -> &'static str {
        match self {
            Facing::Environment => "environment",
            Facing::User => "user",
        }
    }
}

/// What `sys.status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysItem {
    /// Battery level and charging.
    Battery,
    /// Free and total bytes.
    Storage,
    /// Signaling state and links.
    Network,
}

impl SysItem {
    /// `battery`, `storage` or `network`.
    pub fn parse(s: &str) -> Option<SysItem> {
        match s {
            "battery" => Some(SysItem::Battery),
            "storage" => Some(SysItem::Storage),
            "network" => Some(SysItem::Network),
            _ => None,
        }
    }

    /// The name in scopes.
    pub fn name(self) -> &'static str {
        match self {
            SysItem::Battery => "battery",
            SysItem::Storage => "storage",
            SysItem::Network => "network",
        }
    }
}

/// A parsed scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// File system under a glob.
    Fs {
        /// What it allows.
        action: FsAction,
        /// Glob segments (the first is a root name, never a wildcard).
        glob: Vec<String>,
    },
    /// Messages, optionally only after a time.
    DbMessages {
        /// Only messages sent after this (Unix ms).
        after_ms: Option<u64>,
    },
    /// A camera stream (`None` = any facing).
    MediaCamera(Option<Facing>),
    /// Device status (`None` = everything).
    SysStatus(Option<SysItem>),
}

/// How much of a request the grants allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// Nothing.
    None,
    /// Only if the target is a folder (on the way to what a glob matches): list or stat it.
    Folder,
    /// The request, whatever its target.
    Full,
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need<'a> {
    /// `fs.read` of a path.
    FsRead(&'a RpcPath),
    /// `fs.list` of a folder.
    FsList(&'a RpcPath),
    /// `fs.stat` of a path.
    FsStat(&'a RpcPath),
    /// `fs.write` of a path.
    FsWrite(&'a RpcPath),
    /// Messages since a time (Unix ms).
    Messages(u64),
    /// A camera.
    Camera(Facing),
    /// A status item.
    Sys(SysItem),
}

impl Scope {
    /// Parses `s`, refusing anything not in the grammar.
    pub fn parse(s: &str) -> Result<Scope, RpcError> {
        if s.len() > MAX_SCOPE {
            return Err(RpcError::bad("scope too long"));
        }
        let (category, rest) = s
            .split_once(':')
            .ok_or_else(|| RpcError::bad("a scope is category:action:resource"))?;
        let (action, resource) = rest.split_once(':').unwrap_or((rest, ""));
        match (category, action) {
            ("fs", a) => {
                let action = match a {
                    "read" => FsAction::Read,
                    "write" => FsAction::Write,
                    "list" => FsAction::List,
                    _ => return Err(RpcError::bad(format!("unknown fs action {a:?}"))),
                };
                let glob = split(resource, true)?;
                match glob.first() {
                    None => return Err(RpcError::bad("an fs scope names a root")),
                    Some(r) if r.contains('*') => {
                        return Err(RpcError::bad("the root of an fs scope is not a wildcard"));
                    }
                    Some(_) => {}
                }
                Ok(Scope::Fs { action, glob })
            }
            ("db", "read") => {
                let after_ms = match resource {
                    "messages" => None,
                    r => {
                        let t = r
                            .strip_prefix("messages:timestamp>")
                            .ok_or_else(|| RpcError::bad(format!("unknown db resource {r:?}")))?;
                        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(RpcError::bad("timestamp must be digits"));
                        }
                        Some(
                            t.parse()
                                .map_err(|_| RpcError::bad("timestamp too large"))?,
                        )
                    }
                };
                Ok(Scope::DbMessages { after_ms })
            }
            ("media", "stream") => {
                let facing = resource
                    .strip_prefix("camera:")
                    .ok_or_else(|| RpcError::bad("media:stream:camera:<facing>"))?;
                match facing {
                    "*" => Ok(Scope::MediaCamera(None)),
                    f => Facing::parse(f)
                        .map(|f| Scope::MediaCamera(Some(f)))
                        .ok_or_else(|| RpcError::bad(format!("unknown facing {f:?}"))),
                }
            }
            ("sys", "status") => match resource {
                "*" => Ok(Scope::SysStatus(None)),
                r => SysItem::parse(r)
                    .map(|i| Scope::SysStatus(Some(i)))
                    .ok_or_else(|| RpcError::bad(format!("unknown status item {r:?}"))),
            },
            _ => Err(RpcError::bad(format!("unknown scope {category}:{action}"))),
        }
    }

    /// Whether this scope allows `need` whatever its target is.
    pub fn allows(&self, need: &Need<'_>) -> bool {
        self.reach(need) == Reach::Full
    }

    /// How far this scope lets `need` reach: a folder on the way to what an `fs:read|list`
    /// glob matches may be listed and stated ([`Reach::Folder`]), nothing else there.
    pub fn reach(&self, need: &Need<'_>) -> Reach {
        let full = |ok: bool| if ok { Reach::Full } else { Reach::None };
        match (self, need) {
            (Scope::Fs { action, glob }, Need::FsList(p) | Need::FsStat(p))
                if matches!(action, FsAction::Read | FsAction::List)
                    && !glob_match(glob, p.segments())
                    && is_prefix_dir(glob, p.segments()) =>
            {
                Reach::Folder
            }
            _ => full(self.allows_target(need)),
        }
    }

    /// Whether the glob (or the scope) itself covers `need`'s target.
    fn allows_target(&self, need: &Need<'_>) -> bool {
        match (self, need) {
            (Scope::Fs { action, glob }, Need::FsRead(p)) => {
                *action == FsAction::Read && glob_match(glob, p.segments())
            }
            (Scope::Fs { action, glob }, Need::FsList(p) | Need::FsStat(p)) => match action {
                FsAction::Read | FsAction::List => glob_match(glob, p.segments()),
                FsAction::Write => {
                    matches!(need, Need::FsStat(_)) && glob_match(glob, p.segments())
                }
            },
            (Scope::Fs { action, glob }, Need::FsWrite(p)) => {
                *action == FsAction::Write && glob_match(glob, p.segments())
            }
            (Scope::DbMessages { after_ms }, Need::Messages(since)) => {
                after_ms.is_none_or(|t| *since >= t)
            }
            (Scope::MediaCamera(f), Need::Camera(want)) => f.is_none_or(|f| f == *want),
            (Scope::SysStatus(i), Need::Sys(want)) => i.is_none_or(|i| i == *want),
            _ => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Fs { action, glob } => {
                let a = match action {
                    FsAction::Read => "read",
                    FsAction::Write => "write",
                    FsAction::List => "list",
                };
                write!(f, "fs:{a}:/{}", glob.join("/"))
            }
            Scope::DbMessages { after_ms: None } => write!(f, "db:read:messages"),
            Scope::DbMessages { after_ms: Some(t) } => {
                write!(f, "db:read:messages:timestamp>{t}")
            }
            Scope::MediaCamera(c) => {
                write!(f, "media:stream:camera:{}", c.map_or("*", Facing::name))
            }
            Scope::SysStatus(i) => write!(f, "sys:status:{}", i.map_or("*", SysItem::name)),
        }
    }
}

/// Whether `path` may be a folder above something the glob can match (so it may be listed
/// to reach it): every segment of `path` matches the glob's leading segments (anything under
/// a `**`). Only for folders: the caller checks the target is one ([`Reach::Folder`]).
fn is_prefix_dir(glob: &[String], path: &[String]) -> bool {
    let mut gi = 0;
    for seg in path {
        match glob.get(gi) {
            Some(g) if g == "**" => return true,
            Some(g) if seg_match(g.as_bytes(), seg.as_bytes()) => gi += 1,
            _ => return false,
        }
    }
    gi < glob.len()
}

/// Matches whole paths: `**` = any number of segments (zero included).
fn glob_match(glob: &[String], path: &[String]) -> bool {
    match glob.split_first() {
        None => path.is_empty(),
        Some((g, rest)) if g == "**" => (0..=path.len()).any(|i| glob_match(rest, &path[i..])),
        Some((g, rest)) => match path.split_first() {
            Some((p, prest)) => seg_match(g.as_bytes(), p.as_bytes()) && glob_match(rest, prest),
            None => false,
        },
    }
}

/// `*` matches any run of bytes inside one segment.
fn seg_match(g: &[u8], s: &[u8]) -> bool {
    match g.split_first() {
        None => s.is_empty(),
        Some((b'*', grest)) => (0..=s.len()).any(|i| seg_match(grest, &s[i..])),
        Some((c, grest)) => s
            .split_first()
            .is_some_and(|(d, srest)| c == d && seg_match(grest, srest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RpcPath {
        RpcPath::parse(s).unwrap()
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for s in [
            "fs:read:/public/photos/*",
            "fs:write:/incoming/**",
            "fs:list:/public",
            "db:read:messages",
            "db:read:messages:timestamp>17000",
            "media:stream:camera:environment",
            "media:stream:camera:*",
            "sys:status:battery",
            "sys:status:*",
        ] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_scopes_are_refused() {
        for s in [
            "",
            "fs",
            "fs:read",
            "fs:exec:/a",
            "fs:read:a",
            "fs:read:/",
            "fs:read:/*/a",
            "fs:read:/a/../b",
            "fs:read:/a//b",
            "fs:read:/a/%2e",
            "fs:read:/a/x**",
            "db:write:messages",
            "db:read:messages:timestamp>",
            "db:read:messages:timestamp>-1",
            "db:read:messages:timestamp>99999999999999999999999",
            "media:stream:mic:environment",
            "media:stream:camera:back",
            "sys:status:cpu",
            "net:open:x",
        ] {
            assert!(Scope::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn fs_globs_match_exactly() {
        let read = Scope::parse("fs:read:/public/photos/*").unwrap();
        let table: &[(&str, bool)] = &[
            ("/public/photos/a.jpg", true),
            ("/public/photos/.x", true),
            ("/public/photos", false),
            ("/public/photos/a/b.jpg", false),
            ("/public/Photos/a.jpg", false),
            ("/PUBLIC/photos/a.jpg", false),
            ("/public/photosx/a.jpg", false),
            ("/public/a.jpg", false),
            ("/incoming/photos/a.jpg", false),
        ];
        for (path, ok) in table {
            assert_eq!(read.allows(&Need::FsRead(&p(path))), *ok, "{path}");
            // Read never grants write.
            assert!(!read.allows(&Need::FsWrite(&p(path))), "{path}");
        }
        // Folders on the way may be listed and stated as folders only, not read.
        for (need, reach) in [
            (Need::FsList(&p("/public")), Reach::Folder),
            (Need::FsStat(&p("/public/photos")), Reach::Folder),
            (Need::FsList(&p("/incoming")), Reach::None),
            (Need::FsRead(&p("/public")), Reach::None),
            (Need::FsStat(&p("/public/photos/a.jpg")), Reach::Full),
        ] {
            assert_eq!(read.reach(&need), reach, "{need:?}");
        }
        // After `**`, any folder may be on the way, but no file is covered but by the glob.
        let deep = Scope::parse("fs:read:/public/**/keep.txt").unwrap();
        let secret = p("/public/a/b/secret.txt");
        assert_eq!(deep.reach(&Need::FsStat(&secret)), Reach::Folder);
        assert!(!deep.allows(&Need::FsStat(&secret)));
        assert!(!deep.allows(&Need::FsRead(&secret)));
        assert!(deep.allows(&Need::FsStat(&p("/public/a/b/keep.txt"))));

        let write = Scope::parse("fs:write:/incoming/**").unwrap();
        assert!(write.allows(&Need::FsWrite(&p("/incoming/a"))));
        assert!(write.allows(&Need::FsWrite(&p("/incoming/a/b/c"))));
        assert!(write.allows(&Need::FsStat(&p("/incoming/a/b/c"))));
        assert!(!write.allows(&Need::FsRead(&p("/incoming/a"))));
        assert!(!write.allows(&Need::FsList(&p("/incoming"))));
        assert!(!write.allows(&Need::FsWrite(&p("/incomingx/a"))));

        let mid = Scope::parse("fs:read:/public/*.jpg").unwrap();
        assert!(mid.allows(&Need::FsRead(&p("/public/a.jpg"))));
        assert!(mid.allows(&Need::FsRead(&p("/public/.jpg"))));
        assert!(!mid.allows(&Need::FsRead(&p("/public/a.jpg.exe"))));
        assert!(!mid.allows(&Need::FsRead(&p("/public/a.JPG"))));
    }

    #[test]
    fn other_categories_match() {
        let db = Scope::parse("db:read:messages:timestamp>1000").unwrap();
        assert!(db.allows(&Need::Messages(1000)));
        assert!(db.allows(&Need::Messages(5000)));
        assert!(!db.allows(&Need::Messages(999)));
        assert!(
            Scope::parse("db:read:messages")
                .unwrap()
                .allows(&Need::Messages(0))
        );
        let cam = Scope::parse("media:stream:camera:environment").unwrap();
        assert!(cam.allows(&Need::Camera(Facing::Environment)));
        assert!(!cam.allows(&Need::Camera(Facing::User)));
        let sys = Scope::parse("sys:status:battery").unwrap();
        assert!(sys.allows(&Need::Sys(SysItem::Battery)));
        assert!(!sys.allows(&Need::Sys(SysItem::Storage)));
        assert!(!sys.allows(&Need::Camera(Facing::User)));
    }
}
