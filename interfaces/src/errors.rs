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
/// fields, and gets `name()` (the fully qualified error name). With the `client` feature the
/// enum also derives zlink's `ReplyError`, so typed proxies decode it.
macro_rules! wire_errors {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $interface:literal {
            $( $(#[$vmeta:meta])* $variant:ident $({ $($field:ident : $ty:ty),* $(,)? })? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[cfg_attr(feature = "client", derive(zlink::ReplyError))]
        #[cfg_attr(feature = "client", zlink(interface = $interface))]
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

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::error::Error for $name {}
    };
}

pub(crate) use wire_errors;
