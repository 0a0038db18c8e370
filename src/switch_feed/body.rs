//! Reading a report's JSON body: its content type, its size limit, and a parse that refuses
//! ambiguous JSON. `serde_json::Value` keeps the last of two equal keys without a word; a report
//! saying `"sequence":1,"sequence":9` has no one meaning, so it is refused instead.

use std::fmt;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::http::body::{read_limited, BodyError};
use crate::http::ApiError;

/// Reads and parses the JSON body of a feed request of at most `limit` bytes.
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Value, ApiError> {
    if !is_json(req) {
        return Err(ApiError::RequestInvalid(
            "The request body must be sent with Content-Type: application/json.".into(),
        ));
    }
    let body = read_limited(req, payload, limit)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => {
                ApiError::RequestInvalid(format!("The request body is larger than {limit} bytes."))
            }
            BodyError::Unreadable => {
                ApiError::RequestInvalid("The request body could not be read.".into())
            }
        })?;
    parse_strict(&body).map_err(|e| {
        ApiError::RequestInvalid(format!(
            "The request body is not valid JSON for this resource: {e}."
        ))
    })
}

/// `application/json`, or a `+json` type, as actix-web's own JSON extractor accepts.
fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", subtype)) => subtype == "json" || subtype.ends_with("+json"),
        _ => false,
    }
}

/// Parses JSON text into a `Value`, refusing an object that names a key twice (at any depth).
pub fn parse_strict(text: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(text).map(|Strict(value)| value)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format_args!(
                    "the key {shown:?} appears twice in one object"
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_without_repeated_keys_parses_as_serde_json_does() {
        let text = br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":{"a":1}}"#;
        assert_eq!(
            parse_strict(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        for text in [
            r#"{"sequence":1,"sequence":2}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"{"reports":[{"id":"x","id":"y"}]}"#,
        ] {
            let error = parse_strict(text.as_bytes()).unwrap_err().to_string();
            assert!(error.contains("appears twice"), "{text}: {error}");
        }
    }

    #[test]
    fn escaped_spellings_of_one_key_are_the_same_key() {
        assert!(parse_strict(br#"{"a":1,"\u0061":2}"#).is_err());
    }
}
