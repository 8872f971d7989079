//! QR codes for share and invite links: [`encode`] gives the module matrix a screen draws,
//! [`decode_luma`] reads links from a camera frame's luma (Y) plane. Both run in the core so
//! the shells need no barcode library (Android without Play services or androidx, iOS the
//! same code). Pure, bounded, no I/O.

use qrcode::{Color, EcLevel, QrCode};

/// Longest text encoded (an invite link is about 500 characters).
pub const MAX_QR_TEXT: usize = 2048;
/// Largest frame side read, in pixels.
pub const MAX_FRAME_SIDE: u32 = 4096;
/// Most codes read from one frame.
const MAX_CODES: usize = 4;

/// Why a QR code could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// Empty or longer than [`MAX_QR_TEXT`].
    #[error("text of {0} bytes cannot be a QR code here (1 to {MAX_QR_TEXT})")]
    TextSize(usize),
    /// The encoder refused the text.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The frame's dimensions do not match its bytes, or are out of bounds.
    #[error("bad frame: {0}")]
    Frame(&'static str),
}

/// A QR code's modules, row by row; draw it with a quiet zone of 4 modules around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    /// Modules per side.
    pub size: u32,
    /// `size * size` entries, row-major: `true` is dark.
    pub dark: Vec<bool>,
}

/// Encodes `text` with medium error correction (15 %: survives a scuffed screen).
pub fn encode(text: &str) -> Result<QrMatrix, QrError> {
    if text.is_empty() || text.len() > MAX_QR_TEXT {
        return Err(QrError::TextSize(text.len()));
    }
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| QrError::Encode(e.to_string()))?;
    let size = u32::try_from(code.width()).map_err(|_| QrError::Encode("too wide".into()))?;
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    Ok(QrMatrix { size, dark })
}

/// Reads every QR code (at most 4) in a greyscale frame: `width × height` pixels, rows
/// `row_stride` bytes apart (a camera's Y plane often pads rows). Codes that do not decode or
/// are not UTF-8 are skipped.
pub fn decode_luma(
    width: u32,
    height: u32,
    row_stride: u32,
    luma: &[u8],
) -> Result<Vec<String>, QrError> {
    if width == 0 || height == 0 || width > MAX_FRAME_SIDE || height > MAX_FRAME_SIDE {
        return Err(QrError::Frame("side out of bounds"));
    }
    if row_stride < width {
        return Err(QrError::Frame("row stride shorter than the width"));
    }
    let (w, h, stride) = (width as usize, height as usize, row_stride as usize);
    if luma.len() < stride * (h - 1) + w {
        return Err(QrError::Frame("fewer bytes than the dimensions need"));
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma[y * stride + x]);
    Ok(img
        .detect_grids()
        .into_iter()
        .take(MAX_CODES)
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws `m` as a frame: `scale` pixels a module, a 4-module quiet zone, rows padded to
    /// `pad` extra bytes.
    fn render(m: &QrMatrix, scale: usize, pad: usize) -> (u32, u32, u32, Vec<u8>) {
        let side = (m.size as usize + 8) * scale;
        let stride = side + pad;
        let mut px = vec![255u8; stride * side];
        for y in 0..side {
            for x in 0..side {
                let (mx, my) = ((x / scale) as isize - 4, (y / scale) as isize - 4);
                let n = m.size as isize;
                if (0..n).contains(&mx) && (0..n).contains(&my) && m.dark[(my * n + mx) as usize] {
                    px[y * stride + x] = 20;
                }
            }
        }
        (side as u32, side as u32, stride as u32, px)
    }

    #[test]
    fn a_share_link_drawn_and_read_back_is_the_same() {
        let link = format!("peerns2:{}?id=peerns2-{}", "ab".repeat(32), "c".repeat(24));
        let m = encode(&link).unwrap();
        assert_eq!(m.dark.len(), (m.size * m.size) as usize);
        let (w, h, stride, px) = render(&m, 4, 13);
        assert_eq!(decode_luma(w, h, stride, &px).unwrap(), [link]);
    }

    #[test]
    fn an_invite_link_of_the_largest_usual_size_fits() {
        let link = format!("peerns2-group:{}", "A".repeat(700));
        let m = encode(&link).unwrap();
        let (w, h, stride, px) = render(&m, 3, 0);
        assert_eq!(decode_luma(w, h, stride, &px).unwrap(), [link]);
    }

    #[test]
    fn bad_input_is_refused_and_noise_reads_nothing() {
        assert_eq!(encode(""), Err(QrError::TextSize(0)));
        assert!(matches!(
            encode(&"x".repeat(MAX_QR_TEXT + 1)),
            Err(QrError::TextSize(_))
        ));
        assert!(decode_luma(0, 10, 10, &[0; 100]).is_err());
        assert!(decode_luma(10, 10, 9, &[0; 100]).is_err());
        assert!(decode_luma(10, 10, 10, &[0; 99]).is_err());
        assert!(decode_luma(MAX_FRAME_SIDE + 1, 1, MAX_FRAME_SIDE + 1, &[]).is_err());
        let noise: Vec<u8> = (0..200 * 200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        assert_eq!(
            decode_luma(200, 200, 200, &noise).unwrap(),
            Vec::<String>::new()
        );
    }
}
