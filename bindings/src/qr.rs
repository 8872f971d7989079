//! QR codes for share and invite links, drawn and read by the core (no barcode library in
//! the shells): [`qr_encode`] for the screen, [`qr_decode`] for a camera frame's Y plane.

use peerns_core::contacts::qr;

use crate::PeernsError;

/// A QR code's modules, row by row; draw it with a quiet zone of 4 modules around it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QrCode {
    /// Modules per side.
    pub size: u32,
    /// `size * size` entries, row-major: `true` is dark.
    pub dark: Vec<bool>,
}

fn invalid(e: qr::QrError) -> PeernsError {
    PeernsError::InvalidInput { msg: e.to_string() }
}

/// Encodes `text` (1 to 2048 bytes: a share or invite link) as a QR code.
#[uniffi::export]
pub fn qr_encode(text: String) -> Result<QrCode, PeernsError> {
    let m = qr::encode(&text).map_err(invalid)?;
    Ok(QrCode {
        size: m.size,
        dark: m.dark,
    })
}

/// Reads the QR codes (at most 4) in a greyscale frame: `width × height` pixels, rows
/// `row_stride` bytes apart (a camera's Y plane). Returns their texts; empty when none reads.
#[uniffi::export]
pub fn qr_decode(
    width: u32,
    height: u32,
    row_stride: u32,
    luma: Vec<u8>,
) -> Result<Vec<String>, PeernsError> {
    qr::decode_luma(width, height, row_stride, &luma).map_err(invalid)
}
