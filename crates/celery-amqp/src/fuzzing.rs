//! The property the `decode` fuzz target checks, here so that unit tests run it on
//! every build and `fuzz/` only has to feed it bytes.

use serde_json::json;

use crate::codalab::check_compute_worker_run;
use crate::message::{DEFAULT_MAX_BODY, JSON, Properties, TaskMessage};

/// Decodes arbitrary bytes as a message body (the first byte picks protocol 2
/// headers or none, and the content type); whatever decodes must survive
/// encoding and decoding again unchanged. Never panics on any input.
pub fn decode_roundtrip(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let mut props = Properties {
        content_type: Some(
            if selector & 2 == 0 { JSON } else { "application/x-python-serialize" }.into(),
        ),
        content_encoding: Some("utf-8".into()),
        priority: Some(selector >> 4),
        ..Properties::default()
    };
    if selector & 1 == 0 {
        props.headers.insert("task".into(), json!("compute_worker_run"));
        props.headers.insert("id".into(), json!("fuzz"));
    }
    let Ok(task) = TaskMessage::decode(&props, body, DEFAULT_MAX_BODY) else { return };
    let _ = check_compute_worker_run(&task);
    for protocol in [1, 2] {
        let encoded = task.encode(protocol, "fuzz", &[]);
        let mut again = TaskMessage::decode(&encoded.properties, &encoded.body, usize::MAX)
            .expect("an encoded task decodes");
        again.protocol = task.protocol;
        if protocol == 1 {
            // Protocol 1 has no separate root or parent id.
            again.root_id = task.root_id.clone();
            again.parent_id = task.parent_id.clone();
        }
        assert_eq!(again, task, "encode then decode changed the task");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_property_holds_on_a_small_corpus() {
        let bodies: [&[u8]; 11] = [
            b"",
            b"[[], {}, {}]",
            b"[[1, {\"a\": 1}], {}, {\"callbacks\": null}]",
            b"[[1, {}], {\"k\": [1.5, -2, \"\\u00e9\"]}]",
            b"{\"task\": \"t\", \"id\": \"i\", \"args\": [1], \"kwargs\": {}, \"timelimit\": [1, 2.5]}",
            b"{\"task\": \"t\", \"id\": \"i\", \"retries\": 4294967296}",
            b"{\"task\": \"t\", \"id\": \"i\", \"eta\": \"2026-01-01T00:00:00\", \"expires\": null}",
            b"[[{\"deep\": [[[[[]]]]]}], {}, {}]",
            b"\xff\xfe",
            b"[[1e400], {}, {}]",
            // Found by the fuzzer: floats must read back exactly.
            b"[[9e-9, -1.11111011111119e105], {}, {}]",
        ];
        for body in bodies {
            for selector in [0u8, 1, 2, 3, 0x21] {
                let mut data = vec![selector];
                data.extend_from_slice(body);
                decode_roundtrip(&data);
            }
        }
    }
}
