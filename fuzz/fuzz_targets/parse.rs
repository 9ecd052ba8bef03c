//! Any bytes through the whole front end: parse, check, and for clean scripts format and re-parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = rehearse::check_source(std::path::Path::new("fuzz.rollout"), text);
    if file.diagnostics.iter().all(|d| !d.is_error()) {
        let formatted = rehearse::syntax::format::format(&file.script);
        let again = rehearse::parse(&formatted);
        assert!(again.diagnostics.is_empty(), "formatted output does not parse:\n{formatted}");
        assert_eq!(rehearse::syntax::format::format(&again.script), formatted);
    }
});
