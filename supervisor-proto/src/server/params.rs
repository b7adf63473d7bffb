//! Checks a call's parameters against the few shapes the served methods declare, with
//! sd-varlink's answers: a missing, mistyped or unknown field is `InvalidParameter` naming it.

use berth_interfaces::service::VarlinkError;
use serde_json::{Map, Value};

/// The JSON type of a declared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `int` (a number, or a string holding one, as sd-varlink accepts).
    Int,
    /// `string`.
    Str,
    /// `[]string`.
    StrList,
    /// An enum of these names.
    Enum(&'static [&'static str]),
}

/// One declared field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether it may be left out (or be `null`).
    pub optional: bool,
}

/// A required field.
pub const fn required(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        optional: false,
    }
}

/// An optional field.
pub const fn optional(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        optional: true,
    }
}

/// Checks `parameters` against `fields` and returns them with `null`s dropped and numeric
/// strings turned into numbers, ready for a typed decode.
///
/// # Errors
/// `InvalidParameter` naming the first bad field.
pub fn check(mut parameters: Map<String, Value>, fields: &[Field]) -> Result<Value, VarlinkError> {
    if let Some(unknown) = parameters
        .keys()
        .find(|key| !fields.iter().any(|f| f.name == key.as_str()))
    {
        return Err(VarlinkError::invalid_parameter(unknown.as_str()));
    }
    for field in fields {
        let value = parameters.remove(field.name).unwrap_or(Value::Null);
        let value = match value {
            Value::Null if field.optional => continue,
            value => normalize(value, field.kind),
        };
        let value = value.ok_or_else(|| VarlinkError::invalid_parameter(field.name))?;
        parameters.insert(field.name.to_owned(), value);
    }
    Ok(Value::Object(parameters))
}

fn normalize(value: Value, kind: Kind) -> Option<Value> {
    match (kind, value) {
        (Kind::Int, Value::Number(n)) if n.is_i64() => Some(Value::Number(n)),
        (Kind::Int, Value::String(s)) => s.parse::<i64>().ok().map(Value::from),
        (Kind::Str, value @ Value::String(_)) => Some(value),
        (Kind::StrList, Value::Array(items)) if items.iter().all(Value::is_string) => {
            Some(Value::Array(items))
        }
        (Kind::Enum(names), Value::String(s)) if names.contains(&s.as_str()) => {
            Some(Value::String(s))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const FIELDS: &[Field] = &[
        required("signal", Kind::Int),
        required("whom", Kind::Enum(&["leader", "all"])),
        optional("filter", Kind::StrList),
    ];

    fn run(value: Value) -> Result<Value, String> {
        let Value::Object(map) = value else { panic!() };
        check(map, FIELDS).map_err(|e| match e {
            VarlinkError::InvalidParameter { parameter } => parameter,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn good_parameters_come_back_normalized() {
        assert_eq!(
            run(json!({"signal": "15", "whom": "all", "filter": null})),
            Ok(json!({"signal": 15, "whom": "all"}))
        );
        assert_eq!(
            run(json!({"signal": 9, "whom": "leader", "filter": ["a"]})),
            Ok(json!({"signal": 9, "whom": "leader", "filter": ["a"]}))
        );
    }

    #[test]
    fn the_offending_field_is_named() {
        assert_eq!(run(json!({"whom": "all"})), Err("signal".into()));
        assert_eq!(
            run(json!({"signal": 1.5, "whom": "all"})),
            Err("signal".into())
        );
        assert_eq!(
            run(json!({"signal": 1, "whom": "them"})),
            Err("whom".into())
        );
        assert_eq!(
            run(json!({"signal": 1, "whom": "all", "x": 1})),
            Err("x".into())
        );
        assert_eq!(
            run(json!({"signal": 1, "whom": "all", "filter": [1]})),
            Err("filter".into())
        );
    }
}
