//! Fuzzes the Celery message decoder: no input may panic it, and whatever decodes
//! must encode and decode back to the same task.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    celery_amqp::fuzzing::decode_roundtrip(data);
});
