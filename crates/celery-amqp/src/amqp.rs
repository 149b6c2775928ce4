//! Conversions between AMQP field values and JSON, and between lapin's properties
//! and this crate's [`Properties`].

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Number, Value};

use crate::message::Properties;

/// An AMQP header value as JSON. Byte strings that are not UTF-8 become `null`:
/// Celery only sends text.
pub(crate) fn to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        AMQPValue::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        AMQPValue::DecimalValue(d) => {
            let v = f64::from(d.value) / 10f64.powi(i32::from(d.scale));
            Number::from_f64(v).map_or(Value::Null, Value::Number)
        }
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => {
            std::str::from_utf8(s.as_bytes()).map_or(Value::Null, |s| Value::String(s.to_owned()))
        }
        AMQPValue::ByteArray(b) => {
            std::str::from_utf8(b.as_slice()).map_or(Value::Null, |s| Value::String(s.to_owned()))
        }
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(to_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(table_to_json(t)),
        AMQPValue::Void => Value::Null,
    }
}

pub(crate) fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table.inner().iter().map(|(k, v)| (k.as_str().to_owned(), to_json(v))).collect()
}

/// A JSON value as an AMQP header value, typed as py-amqp types them: integers that
/// fit in 32 bits as signed 32-bit (RabbitMQ compares queue arguments by type as
/// well as value, so `x-max-priority` must match what Celery declares).
pub(crate) fn from_json(value: &Value) -> AMQPValue {
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => match i32::try_from(i) {
                Ok(small) => AMQPValue::LongInt(small),
                Err(_) => AMQPValue::LongLongInt(i),
            },
            (None, Some(f)) => AMQPValue::Double(f),
            _ => AMQPValue::Void,
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(items) => {
            AMQPValue::FieldArray(FieldArray::from(items.iter().map(from_json).collect::<Vec<_>>()))
        }
        Value::Object(map) => AMQPValue::FieldTable(table_from_json(map)),
    }
}

pub(crate) fn table_from_json(map: &Map<String, Value>) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in map {
        table.insert(ShortString::from(k.as_str()), from_json(v));
    }
    table
}

/// The parts of lapin's properties that decoding needs.
pub(crate) fn properties(props: &BasicProperties) -> Properties {
    Properties {
        content_type: props.content_type().as_ref().map(|s| s.as_str().to_owned()),
        content_encoding: props.content_encoding().as_ref().map(|s| s.as_str().to_owned()),
        priority: *props.priority(),
        correlation_id: props.correlation_id().as_ref().map(|s| s.as_str().to_owned()),
        headers: props.headers().as_ref().map(table_to_json).unwrap_or_default(),
    }
}

/// lapin properties for publishing: persistent, with the task's headers.
pub(crate) fn basic_properties(props: &Properties) -> BasicProperties {
    let mut out = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(table_from_json(&props.headers));
    if let Some(ct) = &props.content_type {
        out = out.with_content_type(ShortString::from(ct.as_str()));
    }
    if let Some(ce) = &props.content_encoding {
        out = out.with_content_encoding(ShortString::from(ce.as_str()));
    }
    if let Some(p) = props.priority {
        out = out.with_priority(p);
    }
    if let Some(id) = &props.correlation_id {
        out = out.with_correlation_id(ShortString::from(id.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_a_trip_through_a_field_table() {
        let headers = json!({
            "task": "compute_worker_run", "retries": 0, "timelimit": [null, 3900],
            "ignore_result": false, "stamps": {}, "ratio": 0.5, "nested": {"a": [1, "b"]},
        });
        let Value::Object(map) = headers else { unreachable!() };
        assert_eq!(table_to_json(&table_from_json(&map)), map);
    }
}
