//! Validation of call parameters against the IDL, with sd-varlink's rules.
//!
//! A missing or `null` non-nullable field, a value of the wrong JSON type, an unknown enum
//! value or a field the method does not declare makes the call fail with
//! `org.varlink.service.InvalidParameter` naming the top-level field. As in sd-varlink, `int`
//! fields also take strings; numeric strings are turned into numbers here so typed decoding
//! sees an integer, other strings are left for the method to judge (e.g. signal names).

use serde_json::{Map, Number, Value};
use zlink_idl::{CustomType, Field, Type};

use super::interfaces::{MethodSpec, ServedInterface};

/// Checks `params` against the method's inputs; returns the first bad field's name.
pub(crate) fn validate_inputs(
    spec: MethodSpec<'_>,
    params: &mut Map<String, Value>,
) -> Result<(), String> {
    let checker = Checker {
        interface: spec.interface,
    };
    checker.check_fields(&spec.method.inputs().collect::<Vec<_>>(), params)
}

struct Checker<'a> {
    interface: &'a ServedInterface,
}

impl Checker<'_> {
    /// Checks an object against a field list: declared fields first, then unknown keys.
    fn check_fields(
        &self,
        fields: &[&Field<'static>],
        object: &mut Map<String, Value>,
    ) -> Result<(), String> {
        for field in fields {
            let name = field.name().as_str();
            let ok = match object.get_mut(name) {
                None | Some(Value::Null) => is_nullable(field.ty()),
                Some(value) => self.check(field.ty(), value),
            };
            if !ok {
                return Err(name.to_owned());
            }
        }
        match object
            .keys()
            .find(|key| !fields.iter().any(|f| f.name().as_str() == key.as_str()))
        {
            Some(unknown) => Err(unknown.clone()),
            None => Ok(()),
        }
    }

    fn check(&self, ty: &Type<'static>, value: &mut Value) -> bool {
        match ty {
            Type::Optional(inner) => value.is_null() || self.check(inner, value),
            Type::Bool => value.is_boolean(),
            Type::Int => check_int(value),
            Type::Float => value.is_number(),
            Type::String => value.is_string(),
            Type::ForeignObject => value.is_object(),
            Type::Any => true,
            Type::Array(inner) => match value {
                Value::Array(items) => items.iter_mut().all(|item| self.check(inner, item)),
                _ => false,
            },
            Type::Map(inner) => match value {
                Value::Object(map) => map.values_mut().all(|item| self.check(inner, item)),
                _ => false,
            },
            Type::Enum(variants) => is_variant(variants.iter().map(|v| v.name().as_str()), value),
            Type::Object(fields) => self.check_object(fields.iter(), value),
            Type::Custom(name) => match self.interface.custom_type(name.as_str()) {
                Some(CustomType::Object(object)) => self.check_object(object.fields(), value),
                Some(CustomType::Enum(e)) => {
                    is_variant(e.variants().map(|v| v.name().as_str()), value)
                }
                None => false,
            },
        }
    }

    fn check_object<'f>(
        &self,
        fields: impl Iterator<Item = &'f Field<'static>>,
        value: &mut Value,
    ) -> bool {
        match value {
            Value::Object(object) => self
                .check_fields(&fields.collect::<Vec<_>>(), object)
                .is_ok(),
            _ => false,
        }
    }
}

fn is_nullable(ty: &Type<'_>) -> bool {
    matches!(ty, Type::Optional(_))
}

fn is_variant<'v>(mut variants: impl Iterator<Item = &'v str>, value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| variants.any(|variant| variant == s))
}

/// Integers pass; strings pass too, and numeric ones become numbers.
fn check_int(value: &mut Value) -> bool {
    match value {
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::String(s) => {
            if let Some(n) = parse_integer(s) {
                *value = Value::Number(n);
            }
            true
        }
        _ => false,
    }
}

fn parse_integer(s: &str) -> Option<Number> {
    s.parse::<i64>()
        .map(Number::from)
        .or_else(|_| s.parse::<u64>().map(Number::from))
        .ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protocol::InterfaceSet;

    const IDL: &str = "interface org.example.t

type Pid (pid: int, bootId: ?string)
type Mode (fast, slow)

method M(name: string, pid: ?Pid, mode: ?Mode, tags: ?[]string, n: ?int,
         inline: ?(a: int), open: ?object) -> (out: string)
";

    fn check(params: serde_json::Value) -> Result<Map<String, Value>, String> {
        let set = InterfaceSet::new(&[IDL]).unwrap();
        let spec = set.method("org.example.t.M").unwrap();
        let mut params = params.as_object().unwrap().clone();
        validate_inputs(spec, &mut params).map(|()| params)
    }

    #[test]
    fn well_formed_calls_pass() {
        check(json!({"name": "a"})).unwrap();
        check(
            json!({"name": "a", "pid": {"pid": 1}, "mode": "slow", "tags": ["x"], "n": -3,
                     "inline": {"a": 1}, "open": {"anything": [1]}, "out": null}),
        )
        .unwrap_err();
        check(
            json!({"name": "a", "pid": {"pid": 1}, "mode": "slow", "tags": ["x"], "n": -3,
                     "inline": {"a": 1}, "open": {"anything": [1]}}),
        )
        .unwrap();
        check(json!({"name": "a", "pid": null, "mode": null})).unwrap();
    }

    #[test]
    fn the_top_level_field_is_named_for_any_defect() {
        assert_eq!(check(json!({})).unwrap_err(), "name");
        assert_eq!(check(json!({"name": null})).unwrap_err(), "name");
        assert_eq!(check(json!({"name": 3})).unwrap_err(), "name");
        assert_eq!(
            check(json!({"name": "a", "mode": "medium"})).unwrap_err(),
            "mode"
        );
        assert_eq!(check(json!({"name": "a", "pid": 5})).unwrap_err(), "pid");
        assert_eq!(
            check(json!({"name": "a", "pid": {"bootId": "x"}})).unwrap_err(),
            "pid"
        );
        assert_eq!(
            check(json!({"name": "a", "pid": {"pid": 1, "x": 1}})).unwrap_err(),
            "pid"
        );
        assert_eq!(
            check(json!({"name": "a", "tags": [1]})).unwrap_err(),
            "tags"
        );
        assert_eq!(check(json!({"name": "a", "n": 1.5})).unwrap_err(), "n");
        assert_eq!(
            check(json!({"name": "a", "inline": {"a": true}})).unwrap_err(),
            "inline"
        );
        assert_eq!(
            check(json!({"name": "a", "bogus": 1})).unwrap_err(),
            "bogus"
        );
    }

    #[test]
    fn int_fields_take_strings_and_numeric_ones_become_numbers() {
        let params = check(json!({"name": "a", "n": "42"})).unwrap();
        assert_eq!(params["n"], json!(42));
        let params = check(json!({"name": "a", "n": "SIGTERM"})).unwrap();
        assert_eq!(params["n"], json!("SIGTERM"));
    }
}
