//! A microphone's level for the baby monitor's sound alert: 48 kHz mono samples from a test
//! signal or from `ffmpeg` (an ALSA or PulseAudio device, or an audio file played in real time),
//! measured as RMS dBFS every [`WINDOW_MS`] by the sans-IO [`LevelMeter`].

use std::io::Read;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::DesktopError;

/// Samples per second.
const RATE: u64 = 48_000;
/// How often a level is measured.
pub const WINDOW_MS: u64 = 100;
/// Samples per measured window.
const WINDOW: usize = (RATE * WINDOW_MS / 1000) as usize;
/// The level of silence.
pub const FLOOR_DBFS: f32 = -120.0;
/// When the test signal's loud burst starts.
pub const BURST_AT: Duration = Duration::from_secs(8);
/// How long the burst lasts.
pub const BURST: Duration = Duration::from_millis(1500);
/// The burst repeats this often.
pub const BURST_EVERY: Duration = Duration::from_secs(60);

/// The RMS level of `n` samples whose squares sum to `sum_sq`, in dB below full scale.
fn dbfs(sum_sq: f64, n: usize) -> f32 {
    let rms = (sum_sq / n.max(1) as f64).sqrt() / 32_768.0;
    if rms > 0.0 {
        ((20.0 * rms.log10()) as f32).max(FLOOR_DBFS)
    } else {
        FLOOR_DBFS
    }
}

/// Measures the level of every [`WINDOW_MS`] of samples.
#[derive(Debug, Default)]
pub struct LevelMeter {
    sum_sq: f64,
    n: usize,
}

impl LevelMeter {
    /// Adds samples; the levels of the windows they complete, in order.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<f32> {
        let mut out = vec![];
        for &s in pcm {
            self.sum_sq += f64::from(s) * f64::from(s);
            self.n += 1;
            if self.n == WINDOW {
                out.push(dbfs(self.sum_sq, self.n));
                (self.sum_sq, self.n) = (0.0, 0);
            }
        }
        out
    }
}

/// The `test` microphone: a quiet 200 Hz hum (about -53 dBFS), and a loud 1 kHz tone (about
/// -9 dBFS) for [`BURST`] from [`BURST_AT`] on (from the first level read), again every
/// [`BURST_EVERY`].
#[derive(Debug, Default)]
pub struct TestSignal {
    sample: u64,
}

impl TestSignal {
    /// The next `n` samples.
    pub fn next(&mut self, n: usize) -> Vec<i16> {
        let (at, len, every) = (
            BURST_AT.as_millis() as u64 * RATE / 1000,
            BURST.as_millis() as u64 * RATE / 1000,
            BURST_EVERY.as_millis() as u64 * RATE / 1000,
        );
        (0..n)
            .map(|_| {
                let i = self.sample;
                self.sample += 1;
                let loud = i >= at && (i - at) % every < len;
                let (freq, amp) = if loud {
                    (1_000.0, 16_000.0)
                } else {
                    (200.0, 100.0)
                };
                let t = i as f64 / RATE as f64;
                (f64::sin(2.0 * std::f64::consts::PI * freq * t) * amp) as i16
            })
            .collect()
    }
}

enum Source {
    /// The test signal's time starts with the first level read.
    Test {
        signal: TestSignal,
        started: Option<Instant>,
    },
    Ffmpeg {
        child: Child,
        out: ChildStdout,
    },
}

/// A microphone whose level is read every [`WINDOW_MS`].
pub struct Mic {
    source: Source,
    meter: LevelMeter,
    windows: u64,
}

impl Mic {
    /// Opens `test` ([`TestSignal`]), `alsa:DEVICE`, `pulse:DEVICE` or an audio file.
    pub fn open(source: &str) -> Result<Self, DesktopError> {
        if source == "test" {
            return Ok(Self::with(Source::Test {
                signal: TestSignal::default(),
                started: None,
            }));
        }
        if let Some((format @ ("alsa" | "pulse"), device)) = source.split_once(':') {
            return Self::ffmpeg(&["-f", format, "-i", device]);
        }
        if !std::path::Path::new(source).is_file() {
            return Err(DesktopError::Source(format!(
                "{source}: not `test`, `alsa:DEVICE`, `pulse:DEVICE` or an audio file"
            )));
        }
        Self::ffmpeg(&["-re", "-i", source])
    }

    /// Starts `ffmpeg` with the given input arguments, writing 48 kHz mono samples to us.
    pub fn ffmpeg(input: &[&str]) -> Result<Self, DesktopError> {
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(input)
            .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| DesktopError::Source(format!("cannot run ffmpeg: {e}")))?;
        let out = child.stdout.take().expect("piped");
        Ok(Self::with(Source::Ffmpeg { child, out }))
    }

    fn with(source: Source) -> Self {
        Self {
            source,
            meter: LevelMeter::default(),
            windows: 0,
        }
    }

    /// The level of the next window, in dBFS; blocks until it has been heard (the test signal
    /// keeps real time).
    pub fn next_level(&mut self) -> Result<f32, DesktopError> {
        let pcm = match &mut self.source {
            Source::Test { signal, started } => {
                let started = *started.get_or_insert_with(Instant::now);
                let due = started + Duration::from_millis((self.windows + 1) * WINDOW_MS);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                signal.next(WINDOW)
            }
            Source::Ffmpeg { out, .. } => {
                let mut bytes = vec![0; WINDOW * 2];
                out.read_exact(&mut bytes).map_err(|e| {
                    DesktopError::Source(format!("the microphone stream ended: {e}"))
                })?;
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect()
            }
        };
        self.windows += 1;
        let levels = self.meter.push(&pcm);
        Ok(*levels.last().expect("one window of samples"))
    }
}

impl Drop for Mic {
    fn drop(&mut self) {
        if let Source::Ffmpeg { child, .. } = &mut self.source {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_rms_dbfs_per_window() {
        let mut m = LevelMeter::default();
        assert!(m.push(&vec![0; WINDOW - 1]).is_empty());
        assert_eq!(m.push(&[0, 0]), [FLOOR_DBFS]);
        // A full-scale square wave is 0 dBFS, half of it -6; one level per window.
        let mut m = LevelMeter::default();
        let square: Vec<i16> = (0..WINDOW * 2)
            .map(|i| if i % 2 == 0 { i16::MAX } else { -i16::MAX })
            .collect();
        let half: Vec<i16> = square.iter().map(|s| s / 2).collect();
        let l = m.push(&[square, half].concat());
        assert_eq!(l.len(), 4);
        assert!(l[..2].iter().all(|l| l.abs() < 0.01), "{l:?}");
        assert!(l[2..].iter().all(|l| (l + 6.02).abs() < 0.05), "{l:?}");
    }

    #[test]
    fn the_test_signal_is_quiet_until_its_burst() {
        let (mut s, mut m) = (TestSignal::default(), LevelMeter::default());
        let levels = m.push(&s.next((RATE * 12) as usize));
        let burst = (BURST_AT.as_millis() as u64 / WINDOW_MS) as usize;
        let len = (BURST.as_millis() as u64 / WINDOW_MS) as usize;
        assert!(levels[..burst].iter().all(|l| (-54.0..-52.0).contains(l)));
        assert!(
            levels[burst..burst + len]
                .iter()
                .all(|l| (-10.0..-8.0).contains(l))
        );
        assert!(levels[burst + len..].iter().all(|l| *l < -50.0));
    }

    /// The pipe and reader path with ffmpeg's own sine source standing in for a device.
    #[test]
    fn levels_arrive_from_an_ffmpeg_input() {
        // ffmpeg's sine has an amplitude of 1/8: about -21 dBFS.
        let mut mic = Mic::ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]).unwrap();
        for _ in 0..5 {
            let l = mic.next_level().unwrap();
            assert!((-22.0..-20.0).contains(&l), "{l}");
        }
        assert!(Mic::open("/no/such/file.wav").is_err());
        assert!(Mic::open("test").is_ok());
    }
}
