//! The lossless values editor: the first line is a `set` line, the rest a YAML document. `apply`
//! never panics; when it edits, the result parses again and setting the same values on it
//! changes nothing (the edit is exactly what was asked).
#![no_main]

use gitops_promote::clients::values::{apply, EditOptions, SetOp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(line) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let yaml = data.get(split + 1..).unwrap_or(&[]);
    let Ok(set) = SetOp::parse(line) else {
        return;
    };
    let opts = EditOptions {
        max_bytes: 64 * 1024,
        ..EditOptions::default()
    };
    let sets = [set];
    if let Ok(edited) = apply(yaml, &sets, &opts) {
        let again = apply(&edited.bytes, &sets, &opts).expect("the edited file edits again");
        assert!(
            again.changes.is_empty(),
            "setting the same value twice changed {:?}",
            again.changes
        );
        assert_eq!(again.bytes, edited.bytes);
    }
});
