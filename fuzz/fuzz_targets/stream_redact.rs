#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openclaw_rs_fuzz::stream_redact(data));
