//! Files in groups (decision 0011): the author posts the signed manifest as a group message
//! ([`super::Body::File`]); every member then pulls the chunks over its group links — a member
//! from the router, the router from the author or another member that holds them. These are
//! the pull frames (tags 70–72 of the session frame space, only on sessions with
//! [`crate::session::FEATURE_GROUP_FILES`]) and the `group_files` table that tracks each
//! file. Chunks are checked by the whole-file BLAKE3 hash the author signed, so a router that
//! alters one is caught before anything is shown.

use rusqlite::{Connection, OptionalExtension, params};

use super::GroupId;
use crate::chat::file::{CHUNK_SIZE, Manifest};
use crate::chat::wire::Id;
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::identity::Fingerprint;
use crate::store::StoreError;

/// Most chunks one `Want` asks for.
pub const MAX_WANT: u16 = 32;

/// Frame tags.
pub mod tag {
    /// `Want`.
    pub const WANT: u8 = 70;
    /// `Chunk`.
    pub const CHUNK: u8 = 71;
    /// `Lack`.
    pub const LACK: u8 = 72;
}

/// Whether a session frame tag is a group file frame.
pub fn is_file_tag(tag: u8) -> bool {
    (tag::WANT..=tag::LACK).contains(&tag)
}

/// A group file frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFrame {
    /// Send us chunks `from .. from + count` of the file.
    Want {
        /// The group.
        group: GroupId,
        /// The file (its manifest's id).
        file: Id,
        /// First chunk wanted.
        from: u64,
        /// How many (1 to [`MAX_WANT`]).
        count: u16,
    },
    /// One chunk.
    Chunk {
        /// The group.
        group: GroupId,
        /// The file.
        file: Id,
        /// Chunk index.
        index: u64,
        /// The bytes (at most [`CHUNK_SIZE`]).
        data: Vec<u8>,
    },
    /// We do not hold the file (yet): ask someone else, or later.
    Lack {
        /// The group.
        group: GroupId,
        /// The file.
        file: Id,
    },
}

impl FileFrame {
    /// The group it belongs to.
    pub fn group(&self) -> GroupId {
        match self {
            Self::Want { group, .. } | Self::Chunk { group, .. } | Self::Lack { group, .. } => {
                *group
            }
        }
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Self::Want {
                group,
                file,
                from,
                count,
            } => w
                .u8(tag::WANT)
                .raw(&group.0)
                .raw(file)
                .u64(*from)
                .u16(*count),
            Self::Chunk {
                group,
                file,
                index,
                data,
            } => w
                .u8(tag::CHUNK)
                .raw(&group.0)
                .raw(file)
                .u64(*index)
                .bytes(data),
            Self::Lack { group, file } => w.u8(tag::LACK).raw(&group.0).raw(file),
        };
        w.0
    }

    /// Decodes a frame, checking every bound.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(b);
        let frame = match r.u8()? {
            tag::WANT => {
                let (group, file, from, count) =
                    (GroupId(r.array()?), r.array()?, r.u64()?, r.u16()?);
                if count == 0 || count > MAX_WANT {
                    return Err(WireError::TooLong("chunks wanted"));
                }
                Self::Want {
                    group,
                    file,
                    from,
                    count,
                }
            }
            tag::CHUNK => Self::Chunk {
                group: GroupId(r.array()?),
                file: r.array()?,
                index: r.u64()?,
                data: r.bytes(CHUNK_SIZE as usize, "chunk")?.to_vec(),
            },
            tag::LACK => Self::Lack {
                group: GroupId(r.array()?),
                file: r.array()?,
            },
            _ => return Err(WireError::Unknown("group file frame")),
        };
        r.finish()?;
        Ok(frame)
    }
}

/// Where a group file stands on this device: transferring, done (whole and verified, or
/// ours), or refused (over our size limit, or it failed verification from every holder).
pub use crate::chat::file::FileState as GroupFileState;

/// A group file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFile {
    /// The group.
    pub group: GroupId,
    /// Who posted it.
    pub author: Fingerprint,
    /// Its verified manifest.
    pub manifest: Manifest,
    /// Chunks on disk (synced) so far.
    pub next_index: u64,
    /// Where it stands.
    pub state: GroupFileState,
    /// The file on disk once done.
    pub path: Option<String>,
}

/// Records a file first seen in a message; `false` if it was known already.
pub fn add(
    c: &Connection,
    group: &GroupId,
    author: &Fingerprint,
    m: &Manifest,
    state: GroupFileState,
    path: Option<&str>,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let n = c.execute(
        "INSERT OR IGNORE INTO group_files
         (gid, id, author, name, size, mime, content_hash, chunk_size, next_index, state, path,
          updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            group.to_hex(),
            m.id.as_slice(),
            author.to_hex(),
            m.name,
            m.size as i64,
            m.mime,
            m.hash.as_slice(),
            i64::from(m.chunk_size),
            if state == GroupFileState::Done {
                m.chunks() as i64
            } else {
                0
            },
            state.as_str(),
            path,
            now_ms as i64,
        ],
    )?;
    Ok(n == 1)
}

/// The columns [`row`] reads.
const COLUMNS: &str =
    "id, author, name, size, mime, content_hash, chunk_size, next_index, state, path";

/// A `group_files` row of `group` (`None` if it does not decode: an ID or key of the wrong
/// length).
fn row(group: &GroupId, row: &rusqlite::Row) -> rusqlite::Result<Option<GroupFile>> {
    let (id, author, hash): (Vec<u8>, String, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(5)?);
    let state: String = row.get(8)?;
    let (Ok(id), Ok(author), Ok(hash)) = (Id::try_from(id), author.parse(), hash.try_into()) else {
        return Ok(None);
    };
    Ok(Some(GroupFile {
        group: *group,
        author,
        manifest: Manifest {
            id,
            name: row.get(2)?,
            size: row.get::<_, i64>(3)? as u64,
            mime: row.get(4)?,
            hash,
            chunk_size: row.get::<_, i64>(6)? as u32,
        },
        next_index: row.get::<_, i64>(7)? as u64,
        state: GroupFileState::parse(&state),
        path: row.get(9)?,
    }))
}

/// The file `id` of `group`, if known.
pub fn get(c: &Connection, group: &GroupId, id: &Id) -> Result<Option<GroupFile>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM group_files WHERE gid = ?1 AND id = ?2"),
        params![group.to_hex(), id.as_slice()],
        |r| row(group, r),
    )
    .optional()?
    .flatten())
}

/// Bytes of group files (of every group) still to be received.
pub fn unfinished_bytes(c: &Connection) -> Result<u64, StoreError> {
    let n: i64 = c.query_row(
        "SELECT coalesce(sum(max(size - next_index * chunk_size, 0)), 0) FROM group_files
         WHERE state = 'transferring'",
        [],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// The files of `group` still transferring (resumed when the group starts), oldest first.
pub fn unfinished(c: &Connection, group: &GroupId) -> Result<Vec<GroupFile>, StoreError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLUMNS} FROM group_files WHERE gid = ?1 AND state = 'transferring'
         ORDER BY updated_ms"
    ))?;
    let rows = stmt.query_map(params![group.to_hex()], |r| row(group, r))?;
    Ok(rows
        .filter_map(Result::transpose)
        .collect::<Result<_, _>>()?)
}

/// Records progress: chunks before `next_index` are on disk.
pub fn set_progress(
    c: &Connection,
    group: &GroupId,
    id: &Id,
    next_index: u64,
    now_ms: u64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE group_files SET next_index = ?3, updated_ms = ?4 WHERE gid = ?1 AND id = ?2",
        params![
            group.to_hex(),
            id.as_slice(),
            next_index as i64,
            now_ms as i64
        ],
    )?;
    Ok(())
}

/// Records the end of a transfer: done at `path`, or refused.
pub fn finish(
    c: &Connection,
    group: &GroupId,
    id: &Id,
    path: Option<&str>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let state = match path {
        Some(_) => GroupFileState::Done,
        None => GroupFileState::Refused,
    };
    c.execute(
        "UPDATE group_files SET state = ?3, path = ?4, updated_ms = ?5,
         next_index = CASE WHEN ?4 IS NULL THEN next_index ELSE (size + chunk_size - 1) / chunk_size END
         WHERE gid = ?1 AND id = ?2",
        params![
            group.to_hex(),
            id.as_slice(),
            state.as_str(),
            path,
            now_ms as i64
        ],
    )?;
    Ok(())
}

/// Forgets a file (an offer whose message could not be sent).
pub fn remove(c: &Connection, group: &GroupId, id: &Id) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM group_files WHERE gid = ?1 AND id = ?2",
        params![group.to_hex(), id.as_slice()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bounds_hold() {
        let group = GroupId([7; 16]);
        for f in [
            FileFrame::Want {
                group,
                file: [1; 16],
                from: 5,
                count: MAX_WANT,
            },
            FileFrame::Chunk {
                group,
                file: [2; 16],
                index: 9,
                data: vec![3; CHUNK_SIZE as usize],
            },
            FileFrame::Lack {
                group,
                file: [4; 16],
            },
        ] {
            let b = f.encode();
            assert!(is_file_tag(b[0]));
            assert_eq!(FileFrame::decode(&b).unwrap(), f);
            // Truncated or extended frames are refused.
            assert!(FileFrame::decode(&b[..b.len() - 1]).is_err());
            let mut longer = b.clone();
            longer.push(0);
            assert!(FileFrame::decode(&longer).is_err());
        }
        let too_many = FileFrame::Want {
            group,
            file: [1; 16],
            from: 0,
            count: MAX_WANT + 1,
        };
        assert!(FileFrame::decode(&too_many.encode()).is_err());
        let zero = FileFrame::Want {
            group,
            file: [1; 16],
            from: 0,
            count: 0,
        };
        assert!(FileFrame::decode(&zero.encode()).is_err());
        let big = FileFrame::Chunk {
            group,
            file: [2; 16],
            index: 0,
            data: vec![0; CHUNK_SIZE as usize + 1],
        };
        assert!(FileFrame::decode(&big.encode()).is_err());
        assert!(FileFrame::decode(&[69]).is_err());
    }
}
