//! Raw media sources: a test pattern with a moving square, a sine tone, and `.y4m` files.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::DesktopError;
use crate::audio::FRAME_SAMPLES;
use crate::video::I420;

/// Colour bars with a white square that moves one step per frame, and the frame number in a
/// row of bits, so every frame differs.
pub struct TestPattern {
    width: usize,
    height: usize,
    frame: u64,
}

impl TestPattern {
    /// A pattern of the given (even) size.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width: width & !1,
            height: height & !1,
            frame: 0,
        }
    }

    /// The next picture.
    pub fn next_frame(&mut self) -> I420 {
        let (w, h) = (self.width, self.height);
        let mut data = vec![0u8; I420::len_for(w, h)];
        let (y, uv) = data.split_at_mut(w * h);
        for row in 0..h {
            for col in 0..w {
                y[row * w + col] = (16 + (col * 8 / w) * 28) as u8;
            }
        }
        let side = (h / 4).max(2);
        let x0 = (self.frame as usize * 4) % (w - side);
        let y0 = (self.frame as usize * 2) % (h - side);
        for row in y0..y0 + side {
            y[row * w + x0..row * w + x0 + side].fill(235);
        }
        for bit in 0..16 {
            let v = if self.frame >> bit & 1 == 1 { 235 } else { 16 };
            for row in 0..4.min(h) {
                let c = bit * 4;
                if c + 4 <= w {
                    y[row * w + c..row * w + c + 4].fill(v);
                }
            }
        }
        let (u, v) = uv.split_at_mut(w * h / 4);
        for (i, px) in u.iter_mut().enumerate() {
            *px = (64 + (i % (w / 2)) * 128 / (w / 2)) as u8;
        }
        v.fill(128);
        self.frame += 1;
        I420 {
            width: w,
            height: h,
            data,
        }
    }
}

/// A sine tone, 48 kHz mono.
pub struct Tone {
    freq: f64,
    sample: u64,
}

impl Tone {
    /// A tone of `freq` Hz.
    pub fn new(freq: f64) -> Self {
        Self { freq, sample: 0 }
    }

    /// The next 20 ms.
    pub fn next_frame(&mut self) -> Vec<i16> {
        (0..FRAME_SAMPLES)
            .map(|_| {
                let t = self.sample as f64 / 48_000.0;
                self.sample += 1;
                (f64::sin(2.0 * std::f64::consts::PI * self.freq * t) * 8_000.0) as i16
            })
            .collect()
    }
}

/// Reads a `.y4m` file of I420 (`C420*`, or no colour space) pictures.
pub struct Y4mReader<R> {
    input: BufReader<R>,
    width: usize,
    height: usize,
    fps: f32,
}

impl Y4mReader<std::fs::File> {
    /// Opens a file.
    pub fn open(path: &Path) -> Result<Self, DesktopError> {
        Self::new(std::fs::File::open(path)?)
    }
}

impl<R: Read> Y4mReader<R> {
    /// Reads the stream header.
    pub fn new(input: R) -> Result<Self, DesktopError> {
        let mut input = BufReader::new(input);
        let mut line = String::new();
        input.read_line(&mut line)?;
        let mut words = line.split_whitespace();
        if words.next() != Some("YUV4MPEG2") {
            return Err(DesktopError::Source("not a YUV4MPEG2 stream".into()));
        }
        let (mut width, mut height, mut fps) = (0, 0, 30.0);
        for w in words {
            let (tag, val) = w.split_at(1);
            match tag {
                "W" => width = val.parse().unwrap_or(0),
                "H" => height = val.parse().unwrap_or(0),
                "F" => {
                    if let Some((n, d)) = val.split_once(':')
                        && let (Ok(n), Ok(d)) = (n.parse::<f32>(), d.parse::<f32>())
                        && n > 0.0
                        && d > 0.0
                    {
                        fps = n / d;
                    }
                }
                "C" if !val.starts_with("420") => {
                    return Err(DesktopError::Source(format!(
                        "colour space C{val} is not I420"
                    )));
                }
                _ => {}
            }
        }
        if width == 0
            || height == 0
            || width % 2 == 1
            || height % 2 == 1
            || width * height > 4096 * 4096
        {
            return Err(DesktopError::Source(format!("bad size {width}x{height}")));
        }
        Ok(Self {
            input,
            width,
            height,
            fps,
        })
    }

    /// Picture size.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Frames per second from the header (30 if absent).
    pub fn fps(&self) -> f32 {
        self.fps
    }

    /// The next picture; `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<I420>, DesktopError> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.starts_with("FRAME") {
            return Err(DesktopError::Source("missing FRAME marker".into()));
        }
        let mut data = vec![0u8; I420::len_for(self.width, self.height)];
        self.input.read_exact(&mut data)?;
        Ok(Some(I420 {
            width: self.width,
            height: self.height,
            data,
        }))
    }
}
