//! Reading JSON the way sd-json does where serde_json is more lenient: a key given twice in
//! one object is an error (serde_json keeps the last), and a number out of range spoils only
//! the field it is in (serde_json fails the whole text), so the call can be answered with
//! `InvalidParameter` naming that field instead of losing the connection.
//!
//! An object is first split into its fields as raw, unparsed JSON (`RawValue` checks the
//! syntax but converts no number), then each field is parsed on its own.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// The fields of one JSON object, unparsed, in order.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    /// Each key and its raw value.
    pub(crate) entries: Vec<(String, &'a RawValue)>,
    /// The first key that came twice.
    pub(crate) duplicate: Option<String>,
}

/// Why a text is not an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotAnObject {
    /// It is not JSON at all.
    Syntax(String),
    /// It is JSON, but not an object.
    OtherValue,
}

impl<'a> Fields<'a> {
    /// Splits the object `text` into its fields.
    ///
    /// # Errors
    /// The text is not JSON, or not an object.
    pub(crate) fn parse(text: &'a [u8]) -> Result<Self, NotAnObject> {
        serde_json::from_slice(text).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => NotAnObject::OtherValue,
            _ => NotAnObject::Syntax(error.to_string()),
        })
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Fields {
                    entries: Vec::new(),
                    duplicate: None,
                };
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    if !seen.insert(key.clone()) && fields.duplicate.is_none() {
                        fields.duplicate = Some(key.clone());
                    }
                    fields.entries.push((key, value));
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Parses one raw value, refusing duplicate keys at any depth and numbers out of range.
///
/// # Errors
/// The value has a key twice in one of its objects, or a number no JSON number type holds.
pub(crate) fn strict_value(raw: &RawValue) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(raw.get()).map(|strict| strict.0)
}

/// A JSON value read by sd-json's rules.
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
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
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
            let Strict(value) = map.next_value()?;
            if object.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn objects_split_into_raw_fields_and_duplicates_are_named() {
        let fields = Fields::parse(br#"{"a": 1e999999, "b": {"x": [1]}, "a": 2}"#).unwrap();
        let keys: Vec<&str> = fields.entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "a"]);
        assert_eq!(fields.duplicate.as_deref(), Some("a"));
        assert_eq!(fields.entries[1].1.get(), r#"{"x": [1]}"#);
        assert_eq!(Fields::parse(b"[1]").unwrap_err(), NotAnObject::OtherValue);
        assert!(matches!(
            Fields::parse(b"{nope"),
            Err(NotAnObject::Syntax(_))
        ));
    }

    #[test]
    fn values_parse_strictly() {
        assert_eq!(
            strict_value(&raw(r#"{"a": [1, -2, 1.5, "s", null, true]}"#)).unwrap(),
            json!({"a": [1, -2, 1.5, "s", null, true]})
        );
        assert_eq!(
            strict_value(&raw("18446744073709551615")).unwrap(),
            json!(u64::MAX)
        );
        for bad in [
            "1e999999",
            "-1e400",
            r#"{"a": 1, "a": 2}"#,
            r#"[{"b": {"c": 1, "c": 1}}]"#,
        ] {
            assert!(strict_value(&raw(bad)).is_err(), "{bad}");
        }
    }
}
