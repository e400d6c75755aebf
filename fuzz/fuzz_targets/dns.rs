#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wirebeat::fuzzing::dns(data));
