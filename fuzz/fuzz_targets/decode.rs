#![no_main]
//! Feeds arbitrary bytes to the protocol decoder in both directions.
//! See `komunikator_protocol::fuzzing::check` for what is asserted.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| komunikator_protocol::fuzzing::check(data));
