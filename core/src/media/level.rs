//! The loudness of a block of PCM as RFC 6464 puts it on audio packets: the RMS level relative
//! to full scale, as a positive number of decibels below it (0 loudest … 127 silence). The
//! platform measures it on the samples it is about to encode (the core never sees PCM from a
//! microphone), and the group call's router reads it to tell who speaks.

/// RFC 6464's level of 16-bit PCM (any channel layout): −dBov of its RMS, rounded, clamped to
/// 0..=127. An empty block is silence.
pub fn audio_level(pcm: &[i16]) -> u8 {
    if pcm.is_empty() {
        return 127;
    }
    let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / pcm.len() as f64).sqrt() / 32_768.0;
    if rms <= 0.0 {
        return 127;
    }
    let dbov = 20.0 * rms.log10();
    (-dbov).round().clamp(0.0, 127.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amplitude: f64) -> Vec<i16> {
        (0..960)
            .map(|i| (amplitude * (i as f64 * 2.0 * std::f64::consts::PI / 48.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn levels_follow_rfc_6464() {
        assert_eq!(audio_level(&[]), 127);
        assert_eq!(audio_level(&[0; 960]), 127);
        // A full-scale square wave is 0 dBov; a full-scale sine is −3 dBov.
        assert_eq!(audio_level(&[i16::MIN; 960]), 0);
        assert_eq!(audio_level(&sine(32_767.0)), 3);
        // Every halving of the amplitude is 6 dB quieter.
        assert_eq!(audio_level(&sine(16_384.0)), 9);
        assert_eq!(audio_level(&sine(8_192.0)), 15);
        // The quietest nonzero signal is still below 127.
        assert_eq!(audio_level(&[1; 960]), 90);
    }
}
