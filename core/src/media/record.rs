//! Records the remote tracks of a media connection into one Matroska file (one stream per
//! track of a known codec), through a [`MediaSink`] per track and one writer task.
//!
//! Each track's frames are placed at the time its first frame arrived plus its own
//! presentation time, so tracks from independent RTP clocks line up. Frames travel to the
//! writer through a bounded queue; if the disk falls behind, frames are dropped (counted).

use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use super::depacketize::Codec;
use super::frame::EncodedFrame;
use super::mkv::{MkvWriter, RecTrack};
use super::track::{MediaSink, MediaStats};
use crate::transport::RemoteTrack;

/// Frames queued between the sinks and the writer.
pub const RECORD_QUEUE: usize = 256;

/// A recording in progress.
pub struct Recording<W: Write + Send + 'static> {
    sinks: Vec<MediaSink>,
    tx: Option<mpsc::Sender<(usize, u64, EncodedFrame)>>,
    writer: tokio::task::JoinHandle<io::Result<(W, Vec<u64>)>>,
    dropped: Arc<AtomicU64>,
}

impl<W: Write + Send + 'static> Recording<W> {
    /// Starts recording `tracks` into `out`. Tracks whose codec we cannot store are skipped.
    pub fn start(tracks: Vec<RemoteTrack>, out: W) -> Self {
        let tracks: Vec<(RemoteTrack, Codec)> = tracks
            .into_iter()
            .filter_map(|t| Codec::from_mime(t.mime_type()).map(|c| (t, c)))
            .collect();
        let rec: Vec<RecTrack> = tracks.iter().map(|(_, c)| RecTrack { codec: *c }).collect();
        let (tx, mut rx) = mpsc::channel::<(usize, u64, EncodedFrame)>(RECORD_QUEUE);
        let writer = tokio::spawn(async move {
            let mut mkv = MkvWriter::new(BufWriter::new(out), rec);
            while let Some((i, ms, f)) = rx.recv().await {
                mkv.write_frame(i, ms, f.keyframe, &f.data)?;
            }
            let frames = mkv.frames().to_vec();
            let out = mkv.finish()?.into_inner().map_err(|e| e.into_error())?;
            Ok((out, frames))
        });
        let start = Instant::now();
        let dropped = Arc::new(AtomicU64::new(0));
        let sinks = tracks
            .into_iter()
            .enumerate()
            .map(|(i, (t, _))| {
                let tx = tx.clone();
                let dropped = dropped.clone();
                let mut offset_ms: Option<u64> = None;
                MediaSink::start(t, move |f| {
                    let base = *offset_ms.get_or_insert_with(|| {
                        (start.elapsed().as_millis() as u64).saturating_sub(f.pts_us / 1000)
                    });
                    if tx.try_send((i, base + f.pts_us / 1000, f)).is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            sinks,
            tx: Some(tx),
            writer,
            dropped,
        }
    }

    /// Each recorded track and its counters, in file order.
    pub fn tracks(&self) -> Vec<(RemoteTrack, Arc<MediaStats>)> {
        self.sinks
            .iter()
            .map(|s| (s.track().clone(), s.stats().clone()))
            .collect()
    }

    /// The sinks (e.g. to ask for a keyframe).
    pub fn sinks(&self) -> &[MediaSink] {
        &self.sinks
    }

    /// Frames dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops reading, writes what is left and returns the output and the frames written per
    /// track.
    pub async fn finish(mut self) -> io::Result<(W, Vec<u64>)> {
        self.sinks.clear();
        self.tx.take();
        (&mut self.writer)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?
    }
}
