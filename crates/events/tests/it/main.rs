//! Integration tests of fleet-events: decoding, generated schemas, and
//! properties over generated inputs.

mod decode;
mod fuzz_corpus;
mod helpers;
mod properties;
mod schemas;
