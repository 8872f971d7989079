//! Paths named by RPC requests and scopes: `/root/seg/seg`. They are checked once, strictly,
//! where they enter; anything that a file system or a decoder could read as something else is
//! refused rather than normalised: empty segments (`//`), `.` and `..`, percent-encoding,
//! backslashes, NUL and other control characters, characters Windows treats specially, segments
//! ending in a dot or a space, and our own temporary-file prefix.

use super::RpcError;

/// Longest path, in bytes.
pub const MAX_PATH: usize = 1024;
/// Most segments in a path.
pub const MAX_SEGMENTS: usize = 32;
/// Names starting with this are the server's temporary files; no request may name them.
pub const PART_PREFIX: &str = ".peerns-part";

/// A validated request path: its segments, the first being the root's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcPath {
    segments: Vec<String>,
}

impl RpcPath {
    /// Parses a request path (no wildcards allowed).
    pub fn parse(s: &str) -> Result<RpcPath, RpcError> {
        let segments = split(s, false)?;
        if segments.is_empty() {
            return Err(RpcError::bad("the path names no root"));
        }
        Ok(RpcPath { segments })
    }

    /// The root's name (first segment).
    pub fn root(&self) -> &str {
        &self.segments[0]
    }

    /// The segments below the root.
    pub fn rest(&self) -> &[String] {
        &self.segments[1..]
    }

    /// All segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The path below `self` named `name` (checked like any segment).
    pub fn child(&self, name: &str) -> Result<RpcPath, RpcError> {
        check_segment(name, false)?;
        let mut segments = self.segments.clone();
        segments.push(name.to_owned());
        Ok(RpcPath { segments })
    }
}

impl std::fmt::Display for RpcPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

/// Splits and checks `s`; with `glob`, `*` may appear in segments and `**` as a whole segment.
pub(crate) fn split(s: &str, glob: bool) -> Result<Vec<String>, RpcError> {
    if s.len() > MAX_PATH {
        return Err(RpcError::bad("the path is too long"));
    }
    let Some(body) = s.strip_prefix('/') else {
        return Err(RpcError::bad("the path must start with /"));
    };
    if body.is_empty() {
        return Ok(vec![]);
    }
    let segments: Vec<String> = body.split('/').map(str::to_owned).collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(RpcError::bad("the path has too many segments"));
    }
    for seg in &segments {
        check_segment(seg, glob)?;
    }
    Ok(segments)
}

fn check_segment(seg: &str, glob: bool) -> Result<(), RpcError> {
    if seg.is_empty() {
        return Err(RpcError::bad("empty path segment (doubled or trailing /)"));
    }
    if seg == "." || seg == ".." {
        return Err(RpcError::bad("'.' and '..' are not allowed in paths"));
    }
    if seg.len() > 255 {
        return Err(RpcError::bad("a path segment is too long"));
    }
    if seg.starts_with(PART_PREFIX) {
        return Err(RpcError::bad("reserved name"));
    }
    if glob && seg.contains("**") && seg != "**" {
        return Err(RpcError::bad("** must be a whole segment"));
    }
    for c in seg.chars() {
        let bad = match c {
            '*' => !glob,
            '%' => true,
            '/' | '\\' | ':' | '?' | '"' | '<' | '>' | '|' => true,
            c if c.is_control() => true,
            // Characters that render as nothing or reorder text.
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
            '\u{feff}' => true,
            _ => false,
        };
        if bad {
            return Err(RpcError::bad(format!(
                "character {c:?} is not allowed in paths"
            )));
        }
    }
    if seg.ends_with('.') || seg.ends_with(' ') || seg.starts_with(' ') {
        return Err(RpcError::bad(
            "a path segment may not start with a space or end with a dot or a space",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricky_paths_are_refused() {
        let refused = [
            "",
            "incoming/a",
            "/incoming/../etc/passwd",
            "/incoming/./a",
            "/incoming/..",
            "/incoming//a",
            "/incoming/a/",
            "//incoming/a",
            "/incoming/%2e%2e/a",
            "/incoming/a%00",
            "/incoming/a\0b",
            "/incoming\\..\\a",
            "/incoming/a\\b",
            "/incoming/a\nb",
            "/incoming/a*",
            "/incoming/C:",
            "/incoming/a.",
            "/incoming/a ",
            "/incoming/ a",
            "/incoming/a\u{202e}gpj",
            "/incoming/.peerns-part-1",
        ];
        for p in refused {
            let e = RpcPath::parse(p).expect_err(p);
            assert_eq!(e.code, 400, "{p:?}");
        }
        assert!(RpcPath::parse("/").is_err());
        assert!(RpcPath::parse(&format!("/a/{}", "b".repeat(300))).is_err());
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert!(RpcPath::parse(&deep).is_err());
    }

    #[test]
    fn plain_paths_parse() {
        let p = RpcPath::parse("/public/photos/a b.jpg").unwrap();
        assert_eq!(p.root(), "public");
        assert_eq!(p.rest(), ["photos", "a b.jpg"]);
        assert_eq!(p.to_string(), "/public/photos/a b.jpg");
        assert_eq!(
            RpcPath::parse("/public/.hidden").unwrap().rest(),
            [".hidden"]
        );
        assert!(p.child("..").is_err());
        assert_eq!(
            p.child("x").unwrap().to_string(),
            "/public/photos/a b.jpg/x"
        );
    }
}
