//! Any bytes as one received message (the registry's socket): the endpoint either calls it a
//! protocol violation (the connection closes) or makes it a call or an answer.
//!
//! Properties: a violation is never a well-formed call (checked against serde_json's reading
//! of the same bytes); what is accepted is JSON; answers are well-formed; an accepted call,
//! sent again, is accepted unchanged.

#![no_main]

use std::fmt;

use berth_fuzz::check;
use berth_fuzz::served::{Served, peer};
use berth_service_runtime::protocol::Received;
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let endpoint = Served::Registry.endpoint();
    match endpoint.receive(data, peer()) {
        Err(violation) => assert!(
            !is_well_formed_call(data),
            "a well-formed call is a protocol violation ({violation})"
        ),
        Ok(received) => {
            assert!(
                serde_json::from_slice::<IgnoredAny>(data).is_ok(),
                "a message that is not JSON was accepted"
            );
            match received {
                Received::Call(call) => {
                    check::call(endpoint, &call);
                    check::decode(endpoint, &call);
                }
                Received::Answer(answer) => {
                    check::answer(&answer);
                }
            }
        }
    }
});

/// Whether serde_json reads `data` as a method call: an object without repeated keys holding
/// a string `method`, an object or null `parameters`, boolean `more` and `oneway` (not both
/// true), `upgrade` false, and nothing else.
fn is_well_formed_call(data: &[u8]) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(data) else {
        return false;
    };
    let Ok(Keys(keys)) = serde_json::from_slice::<Keys>(data) else {
        return false;
    };
    if keys.len() != object.len() {
        return false;
    }
    let fields_ok = object.iter().all(|(key, value)| match key.as_str() {
        "method" => value.is_string(),
        "parameters" => value.is_object() || value.is_null(),
        "more" | "oneway" => value.is_boolean(),
        "upgrade" => value == &Value::Bool(false),
        _ => false,
    });
    let flag = |name| object.get(name) == Some(&Value::Bool(true));
    fields_ok && object.contains_key("method") && !(flag("more") && flag("oneway"))
}

/// The keys of a JSON object, repeated ones included.
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor;

        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }

        deserializer.deserialize_map(KeysVisitor)
    }
}
