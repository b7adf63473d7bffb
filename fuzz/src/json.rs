//! JSON values from the fuzzer's bytes: free ones ([`any`]), and ones shaped by an IDL type
//! ([`Schema::parameters`]), which now and then get a field left out, a stray field, or a
//! value of another type, so validation is exercised on both sides of every rule.
//!
//! Every choice is made so that running out of bytes picks the plain, valid option: a short
//! input is a well-formed call with meaningful values (the seeds are such inputs).

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};
use zlink_idl::{CustomType, Field, Interface, Method, Type};

use crate::served::Served;

/// How deep generated values nest.
const MAX_DEPTH: usize = 5;

/// Strings the services give meaning to: machine names, classes, enum values, signal names,
/// paths, IDs, user names, DNS names; plus a few awkward ones.
const WORDS: &[&str] = &[
    "demo",
    "a",
    "my-box.example",
    ".host",
    "host",
    "x-",
    "container",
    "vm",
    "leader",
    "supervisor",
    "all",
    "no",
    "yes",
    "graceful",
    "SIGTERM",
    "TERM",
    "SIGKILL",
    "RTMIN+4",
    "SIGRTMAX-1",
    "9",
    "-1",
    "0",
    "65536",
    "4294967296",
    "18446744073709551616",
    "/var/lib/machines/demo",
    "/run/berth/supervise/demo.sock",
    "/a/../b",
    "0123456789abcdef0123456789abcdef",
    "01234567-89ab-cdef-0123-456789abcdef",
    "00000000000000000000000000000000",
    "vu-demo-0",
    "vg-demo-1000",
    "vu-demo-65535",
    "io.systemd.Machine",
    "io.systemd.Multiplexer",
    "demo.",
    "sub.demo",
    "info",
    "debug",
    "",
    " ",
    "\u{0}",
    "\u{a0}",
    "é",
];

/// Object keys: the field names of Berth's interfaces, and a few others.
const KEYS: &[&str] = &[
    "name",
    "pid",
    "pidfdId",
    "bootId",
    "class",
    "leader",
    "leaderProcessId",
    "supervisor",
    "signal",
    "whom",
    "more",
    "question",
    "key",
    "type",
    "uid",
    "gid",
    "userName",
    "groupName",
    "service",
    "acquireMetadata",
    "allowInteractiveAuthentication",
    "ifIndices",
    "interface",
    "level",
    "x",
    "",
];

/// A string: mostly one with a meaning, sometimes anything.
pub fn string(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(3u8, 4u8)? {
        Ok((*u.choose(WORDS)?).to_owned())
    } else {
        u.arbitrary()
    }
}

/// A key for an object that has no declared fields.
pub fn key(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(7u8, 8u8)? {
        Ok((*u.choose(KEYS)?).to_owned())
    } else {
        u.arbitrary()
    }
}

/// A value for an `int` field: numbers small, big, at the edges of Rust's integer types, out
/// of every one of them, as strings (which sd-varlink takes), and floats (which it does not).
pub fn int(u: &mut Unstructured<'_>) -> Result<Value> {
    const EDGES: &[i128] = &[
        0,
        1,
        2,
        3,
        64,
        65,
        65534,
        65535,
        65536,
        i32::MAX as i128,
        i32::MAX as i128 + 1,
        u32::MAX as i128,
        u32::MAX as i128 + 1,
        i64::MIN as i128,
        i64::MAX as i128,
        u64::MAX as i128,
    ];
    Ok(match u.int_in_range(0..=7u8)? {
        0 => Value::from(u.arbitrary::<i64>()?),
        1 => Value::from(u.arbitrary::<u64>()?),
        2 => Value::String(string(u)?),
        3 => float(u)?,
        4 => {
            let edge = *u.choose(EDGES)?;
            let edge = if u.arbitrary()? { -edge } else { edge };
            i64::try_from(edge)
                .map(Value::from)
                .or_else(|_| u64::try_from(edge).map(Value::from))
                .unwrap_or(Value::Null)
        }
        _ => Value::from(u.int_in_range(-2..=70i64)?),
    })
}

fn float(u: &mut Unstructured<'_>) -> Result<Value> {
    let f: f64 = u.arbitrary()?;
    Ok(Number::from_f64(f).map_or(Value::Null, Value::Number))
}

/// Any JSON value, nesting at most a few levels.
pub fn any(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    let last = if depth >= MAX_DEPTH { 4 } else { 6u8 };
    Ok(match u.int_in_range(0..=last)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => int(u)?,
        3 | 4 => Value::String(string(u)?),
        5 => {
            let len = u.int_in_range(0..=3usize)?;
            Value::Array((0..len).map(|_| any(u, depth + 1)).collect::<Result<_>>()?)
        }
        _ => {
            let len = u.int_in_range(0..=3usize)?;
            let mut object = Map::new();
            for _ in 0..len {
                object.insert(key(u)?, any(u, depth + 1)?);
            }
            Value::Object(object)
        }
    })
}

/// The parsed interfaces of one socket, to draw parameters from.
#[derive(Debug)]
pub struct Schema {
    interfaces: Vec<Interface<'static>>,
}

/// A method of a [`Schema`].
#[derive(Debug, Clone, Copy)]
pub struct MethodRef<'s> {
    /// Its interface.
    pub interface: &'s Interface<'static>,
    /// The method.
    pub method: &'s Method<'static>,
}

impl MethodRef<'_> {
    /// The qualified name, e.g. `io.systemd.Machine.List`.
    pub fn qualified(&self) -> String {
        format!(
            "{}.{}",
            self.interface.name().as_str(),
            self.method.name().as_str()
        )
    }

    /// Whether the IDL marks the method `[Requires 'more' flag]`.
    pub fn requires_more(&self) -> bool {
        self.method
            .comments()
            .any(|c| c.text().trim() == "[Requires 'more' flag]")
    }
}

impl Schema {
    /// The interfaces `served` serves, `org.varlink.service` included, parsed once.
    pub fn of(served: Served) -> &'static Self {
        static SCHEMAS: [OnceLock<Schema>; 4] = [const { OnceLock::new() }; 4];
        SCHEMAS[served as usize].get_or_init(|| {
            let texts = served
                .texts()
                .iter()
                .chain([&berth_interfaces::idl::ORG_VARLINK_SERVICE]);
            Schema {
                interfaces: texts
                    .map(|text| Interface::try_from(*text).expect("the IDL texts parse"))
                    .collect(),
            }
        })
    }

    /// Every method served.
    pub fn methods(&self) -> Vec<MethodRef<'_>> {
        self.interfaces
            .iter()
            .flat_map(|interface| {
                interface
                    .methods()
                    .map(move |method| MethodRef { interface, method })
            })
            .collect()
    }

    /// Parameters for `method`: its inputs, mostly as the IDL wants them. The flag says
    /// whether anything was drawn against the IDL (a required field left out, a field it does
    /// not declare, a value of another type), so the call may be refused.
    pub fn parameters(
        &self,
        method: MethodRef<'_>,
        u: &mut Unstructured<'_>,
    ) -> Result<(Map<String, Value>, bool)> {
        let mut draw = Draw {
            interface: method.interface,
            tampered: false,
        };
        let parameters = draw.fields(method.method.inputs(), u, 0)?;
        Ok((parameters, draw.tampered))
    }
}

/// Draws values of one interface's types, noting whether any was drawn against its type.
struct Draw<'i> {
    interface: &'i Interface<'static>,
    tampered: bool,
}

impl Draw<'_> {
    /// An object with `fields`: optional ones present half of the time, required ones nearly
    /// always; now and then a field the IDL does not declare; in an order of the fuzzer's
    /// choice.
    fn fields<'f>(
        &mut self,
        fields: impl Iterator<Item = &'f Field<'static>>,
        u: &mut Unstructured<'_>,
        depth: usize,
    ) -> Result<Map<String, Value>> {
        let mut entries = Vec::new();
        for field in fields {
            let optional = matches!(field.ty(), Type::Optional(_));
            let leave_out = if optional {
                !u.ratio(1u8, 2u8)?
            } else {
                !u.ratio(39u8, 40u8)?
            };
            self.tampered |= leave_out && !optional;
            if !leave_out {
                let value = self.typed(field.ty(), u, depth)?;
                entries.push((field.name().as_str().to_owned(), value));
            }
        }
        if !u.ratio(15u8, 16u8)? {
            entries.push((key(u)?, any(u, depth)?));
            self.tampered = true;
        }
        for i in (1..entries.len()).rev() {
            let j = u.int_in_range(0..=i)?;
            entries.swap(i, j);
        }
        Ok(entries.into_iter().collect())
    }

    /// A value of type `ty`, or once in a while anything at all.
    fn typed(
        &mut self,
        ty: &Type<'static>,
        u: &mut Unstructured<'_>,
        depth: usize,
    ) -> Result<Value> {
        if depth >= MAX_DEPTH || !u.ratio(23u8, 24u8)? {
            self.tampered = true;
            return any(u, depth);
        }
        Ok(match ty {
            Type::Bool => Value::Bool(u.arbitrary()?),
            Type::Int => {
                let value = int(u)?;
                self.tampered |= !(value.is_i64() || value.is_u64() || value.is_string());
                value
            }
            Type::Float => {
                let value = float(u)?;
                self.tampered |= !value.is_number();
                value
            }
            Type::String => Value::String(string(u)?),
            Type::ForeignObject => {
                Value::Object(any(u, depth + 1)?.as_object().cloned().unwrap_or_default())
            }
            Type::Any => any(u, depth)?,
            Type::Optional(inner) => {
                if u.ratio(4u8, 5u8)? {
                    self.typed(inner, u, depth)?
                } else {
                    Value::Null
                }
            }
            Type::Array(inner) => Value::Array(self.list(inner, u, depth)?),
            Type::Map(inner) => {
                let mut map = Map::new();
                for value in self.list(inner, u, depth)? {
                    map.insert(string(u)?, value);
                }
                Value::Object(map)
            }
            Type::Enum(variants) => {
                let names: Vec<&str> = variants.iter().map(|v| v.name().as_str()).collect();
                Value::String((*u.choose(&names)?).to_owned())
            }
            Type::Object(object) => Value::Object(self.fields(object.iter(), u, depth + 1)?),
            Type::Custom(name) => {
                let custom = self
                    .interface
                    .custom_types()
                    .find(|t| t.name().as_str() == name.as_str());
                match custom {
                    Some(CustomType::Object(object)) => {
                        Value::Object(self.fields(object.fields(), u, depth + 1)?)
                    }
                    Some(CustomType::Enum(e)) => {
                        let names: Vec<&str> = e.variants().map(|v| v.name().as_str()).collect();
                        Value::String((*u.choose(&names)?).to_owned())
                    }
                    None => {
                        self.tampered = true;
                        any(u, depth)?
                    }
                }
            }
        })
    }

    fn list(
        &mut self,
        inner: &Type<'static>,
        u: &mut Unstructured<'_>,
        depth: usize,
    ) -> Result<Vec<Value>> {
        let len = u.int_in_range(0..=3usize)?;
        (0..len).map(|_| self.typed(inner, u, depth + 1)).collect()
    }
}
