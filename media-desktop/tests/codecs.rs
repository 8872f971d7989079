//! The desktop codecs and sources against each other: test pattern → OpenH264 → decoder, the
//! core's SPS reader on real encoder output, keyframes on request, the tone through Opus, and
//! a `.y4m` file.

use peerns_core::media::h264::{self, NAL_SPS};
use peerns_media_desktop::audio::{FRAME_SAMPLES, OpusDecoder, OpusEncoder};
use peerns_media_desktop::sources::{TestPattern, Tone, Y4mReader};
use peerns_media_desktop::video::{H264Decoder, H264Encoder, I420};

#[test]
fn test_pattern_encodes_decodes_and_keyframes_come_on_request() {
    let mut pattern = TestPattern::new(320, 240);
    let mut enc = H264Encoder::new(30.0, 500_000).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut keyframes = vec![];
    for i in 0..20u64 {
        if i == 10 {
            enc.request_keyframe();
        }
        let f = enc
            .encode(&pattern.next_frame(), i * 33_333)
            .unwrap()
            .expect("a frame");
        assert_eq!(
            f.keyframe,
            h264::is_keyframe(&f.data),
            "flag matches the NALs"
        );
        if f.keyframe {
            keyframes.push(i);
            let sps = h264::split_nals(&f.data)
                .into_iter()
                .find(|n| h264::nal_type(n) == NAL_SPS)
                .expect("SPS with the IDR");
            assert_eq!(h264::sps_size(sps), Some((320, 240)));
        }
        assert_eq!(dec.decode(&f.data).unwrap(), Some((320, 240)));
    }
    assert_eq!(keyframes, [0, 10]);
}

#[test]
fn the_tone_survives_opus() {
    let mut tone = Tone::new(440.0);
    let mut enc = OpusEncoder::new(32_000).unwrap();
    let mut dec = OpusDecoder::new().unwrap();
    let mut energy = 0f64;
    for i in 0..25 {
        let f = enc.encode(&tone.next_frame(), i * 20_000).unwrap();
        assert!(!f.data.is_empty() && f.data.len() < 400);
        let pcm = dec.decode(&f.data).unwrap();
        assert_eq!(pcm.len(), 2 * FRAME_SAMPLES);
        if i > 5 {
            energy += pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        }
    }
    let rms = (energy / (19.0 * 2.0 * FRAME_SAMPLES as f64)).sqrt();
    assert!(rms > 2_000.0, "a tone, not silence: rms {rms}");
}

#[test]
fn y4m_files_are_read_frame_by_frame() {
    let mut file = b"YUV4MPEG2 W4 H2 F25:1 Ip A1:1 C420jpeg\n".to_vec();
    for k in 0..3u8 {
        file.extend_from_slice(b"FRAME\n");
        file.extend(std::iter::repeat_n(k, I420::len_for(4, 2)));
    }
    let mut r = Y4mReader::new(&file[..]).unwrap();
    assert_eq!((r.size(), r.fps()), ((4, 2), 25.0));
    for k in 0..3u8 {
        let f = r.next_frame().unwrap().unwrap();
        assert!(f.data.iter().all(|&b| b == k));
    }
    assert!(r.next_frame().unwrap().is_none());
    assert!(Y4mReader::new(&b"YUV4MPEG2 W4 H2 C444\n"[..]).is_err());
    assert!(Y4mReader::new(&b"P6 4 2\n"[..]).is_err());
}
