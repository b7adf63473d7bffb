//! Declares wire error enums whose variants are exactly the IDL error names.

/// A Varlink error as it goes on the wire: a qualified name and a parameters object.
pub trait WireError: std::error::Error {
    /// The fully qualified error name, e.g. `io.systemd.Machine.NoSuchMachine`.
    fn name(&self) -> &'static str;
    /// The error's parameters (an empty object for errors without any).
    fn parameters(&self) -> serde_json::Map<String, serde_json::Value>;
}

/// Declares a wire error enum for one Varlink interface.
///
/// Every variant is named exactly like the IDL error, carries the IDL parameters as named
/// fields, and gets `name()` (the fully qualified error name) and [`WireError`]. The enum
/// deserializes from an error reply (`{"error": NAME, "parameters": {…}}`), also when a
/// parameterless error comes with `"parameters": {}` as sd-varlink sends it (zlink's own
/// `ReplyError` derive rejects that), and fails on anything else, so a client can tell its
/// interface's errors from other replies.
macro_rules! wire_errors {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $interface:literal {
            $( $(#[$vmeta:meta])* $variant:ident $({ $($field:ident : $ty:ty),* $(,)? })? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant $({ $($field: $ty),* })? ),*
        }

        impl $name {
            /// The interface these errors belong to.
            pub const INTERFACE: &'static str = $interface;

            /// The fully qualified Varlink error name, e.g. `io.systemd.Machine.NoSuchMachine`.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$variant { .. } => concat!($interface, ".", stringify!($variant)) ),*
                }
            }
        }

        impl $crate::WireError for $name {
            fn name(&self) -> &'static str {
                $name::name(self)
            }

            #[allow(unused_mut)]
            fn parameters(&self) -> ::serde_json::Map<String, ::serde_json::Value> {
                let mut map = ::serde_json::Map::new();
                match self {
                    $( Self::$variant $({ $($field),* })? => {
                        $($( map.insert(stringify!($field).to_owned(), ::serde_json::json!($field)); )*)?
                    } ),*
                }
                map
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use ::serde::de::Error as _;
                let raw = $crate::errors::RawError::deserialize(deserializer)?;
                #[allow(unused_variables)]
                let parameters = raw.parameters.unwrap_or_default();
                match raw.error.as_str() {
                    $( concat!($interface, ".", stringify!($variant)) => Ok(Self::$variant $({
                        $( $field: $crate::errors::field(&parameters, stringify!($field))
                            .map_err(D::Error::custom)?, )*
                    })?), )*
                    other => Err(D::Error::custom(format!("not a {} error: {other}", $interface))),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::error::Error for $name {}
    };
}

pub(crate) use wire_errors;

/// The shape of any error reply.
#[derive(serde::Deserialize)]
pub(crate) struct RawError {
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) parameters: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One parameter of an error reply.
pub(crate) fn field<T: serde::de::DeserializeOwned>(
    parameters: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<T, serde_json::Error> {
    T::deserialize(parameters.get(name).unwrap_or(&serde_json::Value::Null))
}
