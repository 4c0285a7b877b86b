//! The `set` line and path parser: any text is an error or a path, never a panic; a parsed path
//! prints, and its printed form parses again when it has no quoted keys.
#![no_main]

use gitops_promote::clients::values::{Path, SetOp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = SetOp::parse(text);
    if let Ok(p) = Path::parse(text) {
        let shown = p.to_string();
        // Display writes keys bare; a key that needed quotes cannot round-trip through it.
        if !text.contains('"') && !text.contains('\'') {
            if let Ok(again) = Path::parse(&shown) {
                assert_eq!(again.to_string(), shown, "{text:?}");
            }
        }
    }
});
