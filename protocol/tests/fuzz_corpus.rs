//! Re-runs every input in the fuzz corpus (fuzz/corpus/decode) through the
//! fuzz target's checks, on stable Rust, so past findings stay fixed.

use std::path::Path;

#[test]
fn every_corpus_input_passes_the_fuzz_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        komunikator_protocol::fuzzing::check(&data);
        n += 1;
    }
    assert!(n >= 8, "the corpus has only {n} inputs");
}
