//! WAV checks: every byte a provider hands back is validated before anyone plays it, so a
//! provider that writes garbage (or nothing) counts as a failed attempt, never as audio.

use std::io::Cursor;

use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

use super::VoiceError;

/// Sample rates a speech WAV can sensibly have; anything outside is a broken header.
const RATES: std::ops::RangeInclusive<u32> = 4_000..=192_000;
/// The shortest audio worth calling speech: less than this is a provider that wrote a
/// header and no samples.
const MIN_DURATION_MS: u64 = 20;

/// What a valid WAV holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u16,
    pub duration_ms: u64,
}

/// Programs that stream WAV to a pipe cannot seek back to fill in the sizes, so they write
/// placeholders (espeak-ng writes 0x7ffff000). Set the RIFF and `data` sizes to what is
/// really there; a well-formed file is left as it is.
pub fn repair_streamed(bytes: &mut [u8]) {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return;
    }
    let mut pos = 12usize;
    while pos + 8 <= bytes.len() {
        let id = [bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = pos + 8;
        if &id == b"data" {
            let available = bytes.len() - body;
            if size > available {
                let fixed = u32::try_from(available).unwrap_or(u32::MAX);
                bytes[pos + 4..pos + 8].copy_from_slice(&fixed.to_le_bytes());
                let riff = u32::try_from(bytes.len() - 8).unwrap_or(u32::MAX);
                bytes[4..8].copy_from_slice(&riff.to_le_bytes());
            }
            return;
        }
        // Chunks are padded to an even length.
        pos = body.saturating_add(size).saturating_add(size & 1);
    }
}

/// Check that `bytes` are a playable PCM WAV: RIFF/WAVE header, a sane rate and channel
/// count, whole samples, and some audio.
pub fn validate(bytes: &[u8]) -> Result<WavInfo, VoiceError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        let preview: String = String::from_utf8_lossy(&bytes[..bytes.len().min(24)])
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        return Err(VoiceError::Rejected(format!(
            "output is not a WAV file ({} byte(s), starting {preview:?})",
            bytes.len()
        )));
    }
    let reader = WavReader::new(Cursor::new(bytes))
        .map_err(|e| VoiceError::Rejected(format!("broken WAV header: {e}")))?;
    let spec = reader.spec();
    if !RATES.contains(&spec.sample_rate) {
        return Err(VoiceError::Rejected(format!(
            "WAV sample rate {} Hz is not a speech rate",
            spec.sample_rate
        )));
    }
    if spec.channels == 0 || spec.channels > 8 {
        return Err(VoiceError::Rejected(format!(
            "WAV has {} channels",
            spec.channels
        )));
    }
    let frames = u64::from(reader.duration());
    let duration_ms = frames * 1000 / u64::from(spec.sample_rate);
    if duration_ms < MIN_DURATION_MS {
        return Err(VoiceError::Rejected(format!(
            "WAV holds {duration_ms} ms of audio; the provider produced no speech"
        )));
    }
    Ok(WavInfo {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        duration_ms,
    })
}

/// One WAV from several of the same format (the segments of a long text).
pub fn join(parts: &[Vec<u8>]) -> Result<Vec<u8>, VoiceError> {
    let [first, ..] = parts else {
        return Err(VoiceError::Rejected("no audio to join".into()));
    };
    if parts.len() == 1 {
        return Ok(first.clone());
    }
    let header = |bytes: &[u8]| {
        WavReader::new(Cursor::new(bytes.to_vec()))
            .map_err(|e| VoiceError::Rejected(format!("broken WAV header: {e}")))
    };
    let spec = header(first)?.spec();
    let write = |e: hound::Error| VoiceError::Failed(format!("joining audio: {e}"));
    let bad = |e: hound::Error| VoiceError::Rejected(format!("unreadable samples: {e}"));
    let mut out = Cursor::new(Vec::new());
    let mut writer = WavWriter::new(&mut out, spec).map_err(write)?;
    for part in parts {
        let mut reader = header(part)?;
        if reader.spec() != spec {
            return Err(VoiceError::Rejected(
                "segments came back in different WAV formats".into(),
            ));
        }
        match (spec.sample_format, spec.bits_per_sample) {
            (SampleFormat::Float, _) => {
                for s in reader.samples::<f32>() {
                    writer.write_sample(s.map_err(bad)?).map_err(write)?;
                }
            }
            (SampleFormat::Int, 8) => {
                for s in reader.samples::<i8>() {
                    writer.write_sample(s.map_err(bad)?).map_err(write)?;
                }
            }
            (SampleFormat::Int, 16) => {
                for s in reader.samples::<i16>() {
                    writer.write_sample(s.map_err(bad)?).map_err(write)?;
                }
            }
            (SampleFormat::Int, _) => {
                for s in reader.samples::<i32>() {
                    writer.write_sample(s.map_err(bad)?).map_err(write)?;
                }
            }
        }
    }
    writer.finalize().map_err(write)?;
    Ok(out.into_inner())
}

/// Wrap raw signed 16-bit little-endian mono PCM (what ElevenLabs' `pcm_*` formats return)
/// in a WAV header.
pub fn from_pcm16(pcm: &[u8], sample_rate: u32) -> Result<Vec<u8>, VoiceError> {
    if !pcm.len().is_multiple_of(2) {
        return Err(VoiceError::Rejected(format!(
            "raw PCM of odd length ({} bytes) is not 16-bit audio",
            pcm.len()
        )));
    }
    let spec = WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::with_capacity(pcm.len() + 44));
    let mut writer = WavWriter::new(&mut out, spec)
        .map_err(|e| VoiceError::Failed(format!("wrapping PCM: {e}")))?;
    for pair in pcm.chunks_exact(2) {
        writer
            .write_sample(i16::from_le_bytes([pair[0], pair[1]]))
            .map_err(|e| VoiceError::Failed(format!("wrapping PCM: {e}")))?;
    }
    writer
        .finalize()
        .map_err(|e| VoiceError::Failed(format!("wrapping PCM: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u32, rate: u32) -> Vec<u8> {
        let samples = rate * ms / 1000;
        let pcm: Vec<u8> = (0..samples)
            .flat_map(|i| (((i % 50) as i16 - 25) * 400).to_le_bytes())
            .collect();
        from_pcm16(&pcm, rate).unwrap()
    }

    #[test]
    fn a_real_wav_passes_with_its_duration() {
        let info = validate(&tone(500, 16_000)).unwrap();
        assert_eq!(info.sample_rate, 16_000);
        assert_eq!(info.channels, 1);
        assert_eq!(info.duration_ms, 500);
    }

    #[test]
    fn garbage_empty_and_silent_headers_are_rejected() {
        for bad in [
            b"".to_vec(),
            b"hello, I am definitely audio".to_vec(),
            b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk".to_vec(),
            tone(0, 16_000),
        ] {
            let err = validate(&bad).unwrap_err();
            assert!(matches!(err, VoiceError::Rejected(_)), "{err}");
        }
        let mut wrong_rate = tone(300, 16_000);
        wrong_rate[24..28].copy_from_slice(&7u32.to_le_bytes());
        assert!(validate(&wrong_rate).is_err());
    }

    #[test]
    fn streamed_placeholder_sizes_are_repaired() {
        let mut wav = tone(300, 22_050);
        // What espeak-ng writes to a pipe.
        wav[4..8].copy_from_slice(&0x7fff_f024u32.to_le_bytes());
        wav[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        repair_streamed(&mut wav);
        assert_eq!(validate(&wav).unwrap().duration_ms, 300);
    }

    #[test]
    fn joined_segments_add_up_and_mismatches_refuse() {
        let joined = join(&[tone(200, 16_000), tone(300, 16_000)]).unwrap();
        assert_eq!(validate(&joined).unwrap().duration_ms, 500);
        assert!(join(&[tone(200, 16_000), tone(200, 22_050)]).is_err());
    }
}
