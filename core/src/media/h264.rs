//! H.264 Annex-B helpers: split an access unit into NAL units, tell keyframes, keep SPS/PPS in
//! front of every IDR (late joiners and the recorder need them), convert to the length-prefixed
//! form Matroska stores, and read the picture size from an SPS.

/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// Largest SPS or PPS we keep.
pub const MAX_PARAM_SET: usize = 256;

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of an Annex-B buffer (start codes of 3 or 4 bytes), without start codes.
/// Bytes before the first start code are skipped.
pub fn split_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = vec![]; // (start of the start code, start of the NAL)
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let sc = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            starts.push((sc, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(_, nal)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&(sc, _)| sc);
        if end > nal {
            out.push(&data[nal..end]);
        }
    }
    out
}

/// The type of a NAL unit (its low 5 bits), 0 if empty.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// Whether an Annex-B access unit holds an IDR slice.
pub fn is_keyframe(au: &[u8]) -> bool {
    split_nals(au).iter().any(|n| nal_type(n) == NAL_IDR)
}

/// Joins NAL units into Annex-B with 4-byte start codes.
pub fn join_nals<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![];
    for n in nals {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(n);
    }
    out
}

/// Remembers the latest SPS and PPS of a stream and puts them in front of every IDR that
/// lacks them (encoders often send them once, at the start).
#[derive(Debug, Default, Clone)]
pub struct ParamSets {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl ParamSets {
    /// The latest SPS seen.
    pub fn sps(&self) -> Option<&[u8]> {
        self.sps.as_deref()
    }
    /// The latest PPS seen.
    pub fn pps(&self) -> Option<&[u8]> {
        self.pps.as_deref()
    }

    /// Learns the parameter sets of `au`; returns `au` with SPS and PPS in front if it holds an
    /// IDR without them and we know them, else `au` unchanged.
    pub fn prepare(&mut self, au: &[u8]) -> Vec<u8> {
        let nals = split_nals(au);
        let (mut has_sps, mut has_pps, mut idr) = (false, false, false);
        for n in &nals {
            match nal_type(n) {
                NAL_SPS if n.len() <= MAX_PARAM_SET => {
                    self.sps = Some(n.to_vec());
                    has_sps = true;
                }
                NAL_PPS if n.len() <= MAX_PARAM_SET => {
                    self.pps = Some(n.to_vec());
                    has_pps = true;
                }
                NAL_IDR => idr = true,
                _ => {}
            }
        }
        if !idr || (has_sps && has_pps) {
            return au.to_vec();
        }
        let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else {
            return au.to_vec();
        };
        let mut prefix: Vec<&[u8]> = vec![];
        if !has_sps {
            prefix.push(sps);
        }
        if !has_pps {
            prefix.push(pps);
        }
        join_nals(prefix.into_iter().chain(nals))
    }
}

/// An Annex-B access unit as 4-byte length-prefixed NAL units (AVCC, as Matroska and MP4
/// store H.264), without SPS/PPS/AUD (those live in the codec record).
pub fn to_avcc(au: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(au.len() + 8);
    for n in split_nals(au) {
        if matches!(nal_type(n), NAL_SPS | NAL_PPS | 9) {
            continue;
        }
        out.extend_from_slice(&(n.len() as u32).to_be_bytes());
        out.extend_from_slice(n);
    }
    out
}

/// The AVCDecoderConfigurationRecord (`avcC`) of one SPS and one PPS.
pub fn avcc_record(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut out = vec![1, sps.get(1).copied().unwrap_or(66)];
    out.push(sps.get(2).copied().unwrap_or(0xe0));
    out.push(sps.get(3).copied().unwrap_or(31));
    out.push(0xff); // 4-byte lengths
    out.push(0xe1); // one SPS
    out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1); // one PPS
    out.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    out.extend_from_slice(pps);
    out
}

/// Reads Exp-Golomb codes from an RBSP (emulation prevention bytes removed).
struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn new(nal: &[u8]) -> Self {
        let mut data = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let v = self.ue()?;
        Some(if v % 2 == 1 {
            v.div_ceil(2) as i32
        } else {
            -((v / 2) as i32)
        })
    }
}

/// The picture size (width, height) an SPS describes, after cropping.
pub fn sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    let mut b = Bits::new(sps.get(1..)?);
    let profile = b.bits(8)?;
    b.bits(16)?; // constraint flags, level
    b.ue()?; // sps id
    let mut chroma = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma = b.ue()?;
        if chroma == 3 {
            b.bit()?;
        }
        b.ue()?;
        b.ue()?;
        b.bit()?;
        if b.bit()? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if b.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            // delta_scale is −128..=127 in a valid SPS; any i32 is survived.
                            next = (last + i64::from(b.se()?)).rem_euclid(256);
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num
    match b.ue()? {
        0 => {
            b.ue()?;
        }
        1 => {
            b.bit()?;
            b.se()?;
            b.se()?;
            for _ in 0..b.ue()? {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?; // max_num_ref_frames
    b.bit()?;
    // Sizes in a malformed SPS can be up to 2^32: every step is checked, none wraps or panics.
    let w_mbs = b.ue()?.checked_add(1)?;
    let h_units = b.ue()?.checked_add(1)?;
    let frame_mbs_only = b.bit()?;
    if frame_mbs_only == 0 {
        b.bit()?;
    }
    b.bit()?;
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if b.bit()? == 1 {
        (cl, cr, ct, cb) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
    }
    let (sub_w, sub_h) = match chroma {
        0 | 3 => (1, 1),
        2 => (2, 1),
        _ => (2, 2),
    };
    let crop_x = if chroma == 0 { 1 } else { sub_w };
    let crop_y = (if chroma == 0 { 1 } else { sub_h }) * (2 - frame_mbs_only);
    let crop = |a: u32, b: u32, unit: u32| a.checked_add(b)?.checked_mul(unit);
    let width = w_mbs.checked_mul(16)?.checked_sub(crop(cl, cr, crop_x)?)?;
    let height = h_units
        .checked_mul(16 * (2 - frame_mbs_only))?
        .checked_sub(crop(ct, cb, crop_y)?)?;
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    // SPS of a 320×240 constrained-baseline stream (openh264), and a fake PPS/IDR.
    const SPS_320X240: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0x8c, 0x8d, 0x40, 0xa0, 0xf9, 0x00, 0xf0, 0x88, 0x46, 0xa0,
    ];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let nals = split_nals(&au);
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
        assert!(is_keyframe(&au));
        assert!(!is_keyframe(&[0, 0, 1, 0x41, 9]));
        assert_eq!(join_nals(nals.clone()).len(), 4 * 3 + 3 + 2 + 3);
        assert!(split_nals(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn parameter_sets_are_put_before_every_idr() {
        let mut ps = ParamSets::default();
        let first = join_nals([SPS_320X240, PPS, &[0x65, 1, 2][..]]);
        assert_eq!(ps.prepare(&first), first);
        let p = join_nals([&[0x41, 7][..]]);
        assert_eq!(ps.prepare(&p), p, "a P frame is left alone");
        let idr = join_nals([&[0x65, 9][..]]);
        let fixed = ps.prepare(&idr);
        let types: Vec<u8> = split_nals(&fixed).iter().map(|n| nal_type(n)).collect();
        assert_eq!(types, [NAL_SPS, NAL_PPS, NAL_IDR]);
        // Without known parameter sets nothing can be added.
        assert_eq!(ParamSets::default().prepare(&idr), idr);
    }

    #[test]
    fn avcc_drops_param_sets_and_prefixes_lengths() {
        let au = join_nals([SPS_320X240, PPS, &[0x65, 1, 2][..]]);
        assert_eq!(to_avcc(&au), [0, 0, 0, 3, 0x65, 1, 2]);
        let rec = avcc_record(SPS_320X240, PPS);
        assert_eq!(&rec[..6], &[1, 0x42, 0xc0, 0x0d, 0xff, 0xe1]);
        assert_eq!(rec.len(), 6 + 2 + SPS_320X240.len() + 1 + 2 + PPS.len());
    }

    #[test]
    fn sps_gives_the_picture_size() {
        assert_eq!(sps_size(SPS_320X240), Some((320, 240)));
        assert_eq!(sps_size(&[0x67]), None);
    }

    /// Writes an SPS's fields bit by bit (Exp-Golomb for `ue`).
    #[derive(Default)]
    struct BitWriter(Vec<bool>);

    impl BitWriter {
        fn bits(&mut self, v: u64, n: u32) -> &mut Self {
            self.0.extend((0..n).rev().map(|i| (v >> i) & 1 == 1));
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let x = u64::from(v) + 1;
            let len = 64 - x.leading_zeros();
            self.bits(0, len - 1).bits(x, len)
        }
        /// The NAL: header, the bits with emulation prevention, a stop bit.
        fn bytes(&self) -> Vec<u8> {
            let mut out = vec![0x67];
            let mut bits = self.0.clone();
            bits.push(true);
            for chunk in bits.chunks(8) {
                let b = chunk
                    .iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, &bit)| acc | (u8::from(bit) << (7 - i)));
                if b <= 3 && out.len() >= 3 && out[out.len() - 2..] == [0, 0] {
                    out.push(3);
                }
                out.push(b);
            }
            out
        }
    }

    #[test]
    fn a_malformed_sps_with_huge_fields_is_refused_without_overflow() {
        // Baseline: width in macroblocks 2^32 - 1 (×16 overflows u32).
        let mut w = BitWriter::default();
        w.bits(66, 8)
            .bits(0, 16)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(1)
            .bits(0, 1);
        w.ue(u32::MAX - 1).ue(10).bits(1, 1).bits(0, 1).bits(0, 1);
        assert_eq!(sps_size(&w.bytes()), None);
        // A sane size with crop offsets whose sum overflows.
        let mut w = BitWriter::default();
        w.bits(66, 8)
            .bits(0, 16)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(1)
            .bits(0, 1);
        w.ue(19).ue(14).bits(1, 1).bits(0, 1).bits(1, 1);
        w.ue(u32::MAX - 1).ue(u32::MAX - 1).ue(0).ue(0);
        assert_eq!(sps_size(&w.bytes()), None);
        // High profile with a scaling list whose delta overflows i32 arithmetic.
        let mut w = BitWriter::default();
        w.bits(100, 8)
            .bits(0, 16)
            .ue(0)
            .ue(1)
            .ue(0)
            .ue(0)
            .bits(0, 1);
        // The first list's first delta is 2^31 - 1 (8 + it overflows i32), the next ends it.
        w.bits(1, 1).bits(1, 1).ue(u32::MAX - 2).ue(14);
        for _ in 0..7 {
            w.bits(0, 1);
        }
        w.ue(0)
            .ue(0)
            .ue(0)
            .ue(1)
            .bits(0, 1)
            .ue(19)
            .ue(14)
            .bits(1, 1)
            .bits(0, 1)
            .bits(0, 1);
        assert_eq!(sps_size(&w.bytes()), Some((320, 240)));
    }
}
