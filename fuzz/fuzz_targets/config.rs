//! The config loader fed random text: an error or a config, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = invent_proxy::Config::from_yaml(text, "fuzz.yaml", std::path::Path::new("/nonexistent"));
});
