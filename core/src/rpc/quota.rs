//! Size quotas per root: the bytes of the regular files under a root (partial files included)
//! plus what open uploads still announced may not go over the root's quota (413). The usage is
//! measured on disk at each check (files the user adds or deletes count at once); uploads in
//! progress hold a [`Reservation`] for the bytes they have yet to write, so two uploads cannot
//! both take the last free bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::RpcError;
use super::part::lock;

/// Quotas of some roots, by root name, and the bytes reserved under each.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    limits: BTreeMap<String, u64>,
    reserved: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// Bytes an upload may still write under a root's quota; released as they are written, the
/// rest when dropped.
#[derive(Debug)]
pub struct Reservation {
    root: String,
    left: u64,
    reserved: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// Bytes of the regular files under `dir`, links not followed.
fn usage(dir: &Path) -> Result<u64, RpcError> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries =
            fs::read_dir(&d).map_err(|e| RpcError::internal(format!("measuring the root: {e}")))?;
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    Ok(total)
}

impl Quotas {
    /// Quotas from `(root, bytes)` pairs.
    pub fn new(limits: &[(String, u64)]) -> Quotas {
        Quotas {
            limits: limits.iter().cloned().collect(),
            reserved: Arc::default(),
        }
    }

    /// The quota of `root`, if it has one.
    pub fn limit(&self, root: &str) -> Option<u64> {
        self.limits.get(root).copied()
    }

    /// Checks that `adds` more bytes fit under `root` (folder `dir`) once `cut` bytes of a
    /// partial file are dropped, and reserves them.
    pub fn reserve(
        &self,
        root: &str,
        dir: &Path,
        adds: u64,
        cut: u64,
    ) -> Result<Reservation, RpcError> {
        let mut reserved = lock(&self.reserved);
        if let Some(limit) = self.limit(root) {
            let held = reserved.get(root).copied().unwrap_or(0);
            let used = usage(dir)?.saturating_sub(cut).saturating_add(held);
            if used.saturating_add(adds) > limit {
                return Err(RpcError::too_large(format!(
                    "the quota of /{root} is {limit} bytes; {used} are used"
                )));
            }
            *reserved.entry(root.to_owned()).or_default() += adds;
        }
        Ok(Reservation {
            root: root.to_owned(),
            left: if self.limit(root).is_some() { adds } else { 0 },
            reserved: self.reserved.clone(),
        })
    }
}

impl Reservation {
    /// `n` reserved bytes were written (they count on disk now).
    pub fn written(&mut self, n: u64) {
        let n = n.min(self.left);
        self.left -= n;
        if let Some(r) = lock(&self.reserved).get_mut(&self.root) {
            *r = r.saturating_sub(n);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let left = self.left;
        self.written(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_reservations_count_against_the_quota() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        fs::write(d.path().join("a"), [0; 300]).unwrap();
        fs::write(d.path().join("sub/b"), [0; 200]).unwrap();
        let q = Quotas::new(&[("in".into(), 1000)]);
        // 500 used: 500 more fit, 501 do not.
        assert_eq!(q.reserve("in", d.path(), 501, 0).unwrap_err().code, 413);
        let mut r = q.reserve("in", d.path(), 400, 0).unwrap();
        // 400 reserved by an upload in progress: only 100 left for others.
        assert_eq!(q.reserve("in", d.path(), 101, 0).unwrap_err().code, 413);
        // A partial file about to be cut frees its bytes.
        q.reserve("in", d.path(), 300, 200).unwrap();
        // Written bytes move from the reservation to the disk.
        fs::write(d.path().join("c"), [0; 150]).unwrap();
        r.written(150);
        assert_eq!(q.reserve("in", d.path(), 101, 0).unwrap_err().code, 413);
        q.reserve("in", d.path(), 100, 0).unwrap();
        drop(r);
        q.reserve("in", d.path(), 350, 0).unwrap();
        // Roots without a quota are not measured.
        q.reserve("other", Path::new("/nonexistent"), u64::MAX, 0)
            .unwrap();
    }
}
