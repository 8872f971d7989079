//! A Matroska recorder in pure Rust: H.264 or VP8 video and Opus audio tracks in one `.mkv`
//! that ffmpeg/ffprobe read.
//!
//! The header is written once every video track's codec setup is known (H.264: SPS and PPS from
//! its first keyframe; VP8: the size from its first keyframe); frames before that are held, at
//! most [`MAX_HELD_FRAMES`]. Video before its track's first keyframe is dropped. Frames go into
//! clusters of at most [`CLUSTER_MS`] that are written whole, so an interrupted recording is
//! readable up to its last cluster. The segment's size is left unknown (as live WebM does).

use std::io::{self, Write};

use super::depacketize::Codec;
use super::h264;

/// Frames held while the header waits for a video keyframe; older ones are dropped.
pub const MAX_HELD_FRAMES: usize = 512;
/// Longest cluster, in milliseconds.
pub const CLUSTER_MS: u64 = 2_000;

/// A track to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecTrack {
    /// H.264, VP8 or Opus.
    pub codec: Codec,
}

#[derive(Debug, Default, Clone)]
struct TrackState {
    params: h264::ParamSets,
    size: Option<(u32, u32)>,
    private: Option<Vec<u8>>,
    ready: bool,
    started: bool,
}

struct Held {
    track: usize,
    ms: u64,
    keyframe: bool,
    data: Vec<u8>,
}

/// Writes one Matroska file.
pub struct MkvWriter<W: Write> {
    out: W,
    tracks: Vec<RecTrack>,
    state: Vec<TrackState>,
    header_done: bool,
    held: Vec<Held>,
    cluster: Vec<u8>,
    cluster_ms: Option<u64>,
    frames: Vec<u64>,
}

/// An EBML variable-size integer for `n` in the fewest bytes.
fn vint(n: u64) -> Vec<u8> {
    for len in 1..=8u32 {
        let max = (1u64 << (7 * len)) - 1;
        if n < max {
            let v = n | (1u64 << (7 * len));
            return v.to_be_bytes()[8 - len as usize..].to_vec();
        }
    }
    unreachable!("sizes fit in 56 bits")
}

fn id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count();
    b[skip..].to_vec()
}

fn el(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = id_bytes(id);
    out.extend(vint(payload.len() as u64));
    out.extend_from_slice(payload);
    out
}

fn uint(id: u32, v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count().min(7);
    el(id, &b[skip..])
}

fn float(id: u32, v: f64) -> Vec<u8> {
    el(id, &v.to_be_bytes())
}

/// Opus identification header (RFC 7845 §5.1) as Matroska's CodecPrivate.
fn opus_head() -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1); // version
    h.push(2); // channels
    h.extend_from_slice(&312u16.to_le_bytes()); // pre-skip
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0); // mapping family
    h
}

/// Width and height from a VP8 keyframe header.
fn vp8_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((u32::from(w), u32::from(h)))
}

impl<W: Write> MkvWriter<W> {
    /// A recording of `tracks` (track numbers 1, 2, … in this order) into `out`.
    pub fn new(out: W, tracks: Vec<RecTrack>) -> Self {
        let state = tracks
            .iter()
            .map(|t| TrackState {
                ready: t.codec == Codec::Opus,
                private: (t.codec == Codec::Opus).then(opus_head),
                ..Default::default()
            })
            .collect();
        let frames = vec![0; tracks.len()];
        Self {
            out,
            tracks,
            state,
            header_done: false,
            held: vec![],
            cluster: vec![],
            cluster_ms: None,
            frames,
        }
    }

    /// Frames written per track.
    pub fn frames(&self) -> &[u64] {
        &self.frames
    }

    /// The picture size a video track's keyframes announce, once known.
    pub fn size(&self, track: usize) -> Option<(u32, u32)> {
        self.state.get(track).and_then(|s| s.size)
    }

    /// Records a frame of track `track` (index into the tracks given) at `ms` since the start.
    /// H.264 frames are Annex-B access units.
    pub fn write_frame(
        &mut self,
        track: usize,
        ms: u64,
        keyframe: bool,
        data: &[u8],
    ) -> io::Result<()> {
        let Some(t) = self.tracks.get(track).copied() else {
            return Err(io::Error::other("unknown track"));
        };
        let st = &mut self.state[track];
        let data = match t.codec {
            Codec::H264 => {
                let au = st.params.prepare(data);
                if keyframe && let (Some(sps), Some(pps)) = (st.params.sps(), st.params.pps()) {
                    st.size = st.size.or_else(|| h264::sps_size(sps));
                    if st.private.is_none() {
                        st.private = Some(h264::avcc_record(sps, pps));
                        st.ready = true;
                    }
                }
                h264::to_avcc(&au)
            }
            Codec::Vp8 => {
                if keyframe && st.size.is_none() {
                    st.size = vp8_size(data);
                    st.ready = st.size.is_some();
                }
                data.to_vec()
            }
            Codec::Opus => data.to_vec(),
        };
        if t.codec.is_video() && !st.started {
            if !keyframe || !st.ready {
                return Ok(()); // undecodable before the first keyframe
            }
            st.started = true;
        }
        if !self.header_done {
            if self.held.len() >= MAX_HELD_FRAMES {
                self.held.remove(0);
            }
            self.held.push(Held {
                track,
                ms,
                keyframe,
                data,
            });
            if self.state.iter().all(|s| s.ready) {
                self.write_header()?;
                for h in std::mem::take(&mut self.held) {
                    self.block(h.track, h.ms, h.keyframe, &h.data)?;
                }
            }
            return Ok(());
        }
        self.block(track, ms, keyframe, &data)
    }

    fn write_header(&mut self) -> io::Result<()> {
        let ebml = [
            uint(0x4286, 1),
            uint(0x42F7, 1),
            uint(0x42F2, 4),
            uint(0x42F3, 8),
            el(0x4282, b"matroska"),
            uint(0x4287, 4),
            uint(0x4285, 2),
        ]
        .concat();
        self.out.write_all(&el(0x1A45DFA3, &ebml))?;
        self.out.write_all(&id_bytes(0x18538067))?;
        self.out
            .write_all(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])?;
        let info = [
            uint(0x2AD7B1, 1_000_000),
            el(0x4D80, b"peerns"),
            el(0x5741, b"peerns"),
        ]
        .concat();
        self.out.write_all(&el(0x1549A966, &info))?;
        let mut entries = vec![];
        for (i, (t, st)) in self.tracks.iter().zip(&self.state).enumerate() {
            let n = i as u64 + 1;
            let mut e = [uint(0xD7, n), uint(0x73C5, n), uint(0x9C, 0)].concat();
            match t.codec {
                Codec::Opus => {
                    e.extend(uint(0x83, 2));
                    e.extend(el(0x86, b"A_OPUS"));
                    e.extend(uint(0x56AA, 6_500_000));
                    e.extend(uint(0x56BB, 80_000_000));
                    e.extend(el(0xE1, &[float(0xB5, 48_000.0), uint(0x9F, 2)].concat()));
                }
                Codec::H264 | Codec::Vp8 => {
                    e.extend(uint(0x83, 1));
                    let id: &[u8] = if t.codec == Codec::H264 {
                        b"V_MPEG4/ISO/AVC"
                    } else {
                        b"V_VP8"
                    };
                    e.extend(el(0x86, id));
                    let (w, h) = st.size.unwrap_or((0, 0));
                    e.extend(el(
                        0xE0,
                        &[uint(0xB0, w.into()), uint(0xBA, h.into())].concat(),
                    ));
                }
            }
            if let Some(p) = &st.private {
                e.extend(el(0x63A2, p));
            }
            entries.extend(el(0xAE, &e));
        }
        self.out.write_all(&el(0x1654AE6B, &entries))?;
        self.header_done = true;
        Ok(())
    }

    fn block(&mut self, track: usize, ms: u64, keyframe: bool, data: &[u8]) -> io::Result<()> {
        let start = match self.cluster_ms {
            Some(c) if ms >= c && ms - c < CLUSTER_MS => c,
            Some(c) if ms < c && c - ms < 30_000 => c, // slightly late audio: negative offset
            _ => {
                self.flush_cluster()?;
                self.cluster_ms = Some(ms);
                self.cluster.extend(uint(0xE7, ms));
                ms
            }
        };
        let rel = (ms as i64 - start as i64) as i16;
        let mut b = vint(track as u64 + 1);
        b.extend_from_slice(&rel.to_be_bytes());
        b.push(if keyframe { 0x80 } else { 0 });
        b.extend_from_slice(data);
        self.cluster.extend(el(0xA3, &b));
        self.frames[track] += 1;
        Ok(())
    }

    fn flush_cluster(&mut self) -> io::Result<()> {
        if !self.cluster.is_empty() {
            let c = el(0x1F43B675, &std::mem::take(&mut self.cluster));
            self.out.write_all(&c)?;
            self.out.flush()?;
        }
        Ok(())
    }

    /// Writes what is buffered (the header even if a video track never got a keyframe) and
    /// returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.header_done {
            self.write_header()?;
            for h in std::mem::take(&mut self.held) {
                self.block(h.track, h.ms, h.keyframe, &h.data)?;
            }
        }
        self.flush_cluster()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vints_and_elements_encode_like_ebml() {
        assert_eq!(vint(0), [0x80]);
        assert_eq!(vint(126), [0xFE]);
        assert_eq!(vint(127), [0x40, 0x7F]);
        assert_eq!(vint(300), [0x41, 0x2C]);
        assert_eq!(uint(0xD7, 1), [0xD7, 0x81, 0x01]);
        assert_eq!(uint(0xE7, 0), [0xE7, 0x81, 0x00]);
        assert_eq!(el(0x1A45DFA3, &[])[..4], [0x1A, 0x45, 0xDF, 0xA3]);
    }

    #[test]
    fn frames_wait_for_the_video_keyframe_then_are_written() {
        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x40, 0x7b, 0x20];
        let pps: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        let tracks = vec![
            RecTrack { codec: Codec::H264 },
            RecTrack { codec: Codec::Opus },
        ];
        let mut w = MkvWriter::new(Vec::new(), tracks);
        w.write_frame(1, 0, true, &[0xfc, 1]).unwrap();
        w.write_frame(0, 10, false, &h264::join_nals([&[0x41u8, 1][..]]))
            .unwrap();
        assert_eq!(
            w.frames(),
            [0, 0],
            "nothing before the keyframe's parameter sets"
        );
        let idr = h264::join_nals([sps, pps, &[0x65, 1, 2][..]]);
        w.write_frame(0, 40, true, &idr).unwrap();
        w.write_frame(1, 20, true, &[0xfc, 2]).unwrap();
        w.write_frame(0, 2_100, false, &h264::join_nals([&[0x41u8, 3][..]]))
            .unwrap();
        assert_eq!(w.frames(), [2, 2]);
        let out = w.finish().unwrap();
        assert_eq!(&out[..4], &[0x1A, 0x45, 0xDF, 0xA3]);
        let has = |needle: &[u8]| out.windows(needle.len()).any(|x| x == needle);
        assert!(has(b"V_MPEG4/ISO/AVC") && has(b"A_OPUS") && has(b"OpusHead"));
        assert!(has(&h264::avcc_record(sps, pps)));
        // Two clusters: the second starts at 2100 ms.
        let clusters = out
            .windows(4)
            .filter(|x| *x == [0x1F, 0x43, 0xB6, 0x75])
            .count();
        assert_eq!(clusters, 2);
    }
}
