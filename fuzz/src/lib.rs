//! Helpers shared by the fuzz targets in `fuzz_targets/`.

/// Splits fuzz input into frames, each a big-endian `u16` length and that many bytes; a short
/// last frame takes what is left. The seed writer (`core/tests/fuzz_seeds.rs`) uses the same
/// layout.
pub fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let [a, b, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(rest.len());
        let (frame, tail) = rest.split_at(len);
        out.push(frame);
        data = tail;
    }
    out
}
