//! A live picture source read from `ffmpeg` as a YUV4MPEG2 stream: a V4L2 camera
//! (`/dev/videoN`) on Linux, or any other ffmpeg input. ffmpeg does the device negotiation and
//! the conversion to I420; a reader thread keeps only the newest pictures, so a slow encoder
//! never makes the camera lag behind.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TrySendError, sync_channel};
use std::time::Duration;

use crate::DesktopError;
use crate::sources::Y4mReader;
use crate::video::I420;

/// Pictures held between the reader thread and the encoder.
const QUEUE: usize = 2;

/// A running camera (an `ffmpeg` child process).
pub struct Camera {
    child: Child,
    rx: Receiver<Result<I420, String>>,
    last: Option<I420>,
}

impl Camera {
    /// Opens a V4L2 device at `size` and `fps` (the device may choose the nearest mode; ffmpeg
    /// scales to I420 either way).
    pub fn v4l2(device: &Path, size: (usize, usize), fps: u32) -> Result<Self, DesktopError> {
        let size = format!("{}x{}", size.0, size.1);
        let fps = fps.to_string();
        let device = device.to_string_lossy();
        Self::ffmpeg(&[
            "-f",
            "v4l2",
            "-framerate",
            &fps,
            "-video_size",
            &size,
            "-i",
            &device,
        ])
    }

    /// Starts `ffmpeg` with the given input arguments, writing I420 YUV4MPEG2 to us.
    pub fn ffmpeg(input: &[&str]) -> Result<Self, DesktopError> {
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(input)
            .args(["-f", "yuv4mpegpipe", "-pix_fmt", "yuv420p", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DesktopError::Source(format!("cannot run ffmpeg: {e}")))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::spawn(move || {
            let mut reader = match Y4mReader::new(stdout) {
                Ok(r) => r,
                Err(e) => {
                    let mut why = String::new();
                    let _ = std::io::Read::read_to_string(&mut { stderr }, &mut why);
                    let why = why.lines().last().unwrap_or("").to_owned();
                    let _ = tx.send(Err(format!("{e} {why}").trim().to_owned()));
                    return;
                }
            };
            loop {
                match reader.next_frame() {
                    Ok(Some(pic)) => match tx.try_send(Ok(pic)) {
                        Ok(()) | Err(TrySendError::Full(_)) => {}
                        Err(TrySendError::Disconnected(_)) => return,
                    },
                    Ok(None) => {
                        let _ = tx.send(Err("the camera stream ended".into()));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        Ok(Self {
            child,
            rx,
            last: None,
        })
    }

    /// The newest picture. Waits up to `first_wait` for the very first one; after that it
    /// never waits and repeats the last picture when the camera has nothing newer.
    pub fn next_frame(&mut self, first_wait: Duration) -> Result<I420, DesktopError> {
        let mut newest = None;
        while let Ok(got) = self.rx.try_recv() {
            newest = Some(got.map_err(DesktopError::Source)?);
        }
        if newest.is_none() && self.last.is_none() {
            match self.rx.recv_timeout(first_wait) {
                Ok(got) => newest = Some(got.map_err(DesktopError::Source)?),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(DesktopError::Source("the camera gave no picture".into()));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(DesktopError::Source("the camera stopped".into()));
                }
            }
        }
        if let Some(pic) = newest {
            self.last = Some(pic);
        }
        Ok(self.last.clone().expect("set above"))
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipe and reader path with ffmpeg's own test source standing in for a device (no
    /// V4L2 device exists on the machines these tests run on).
    #[test]
    fn pictures_arrive_from_an_ffmpeg_input() {
        let mut cam =
            Camera::ffmpeg(&["-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30"]).unwrap();
        let first = cam.next_frame(Duration::from_secs(10)).unwrap();
        assert_eq!((first.width, first.height), (160, 120));
        std::thread::sleep(Duration::from_millis(200));
        let later = cam.next_frame(Duration::ZERO).unwrap();
        assert_ne!(first.data, later.data, "the test source moves");
    }

    #[test]
    fn a_missing_device_is_a_clear_error() {
        let mut cam = Camera::v4l2(Path::new("/dev/video-none"), (320, 240), 30).unwrap();
        let err = cam.next_frame(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(err, DesktopError::Source(_)), "{err}");
    }
}
