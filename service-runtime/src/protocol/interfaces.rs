//! The set of interfaces a server serves, parsed once from their IDL texts.

use std::collections::HashMap;

use zlink_idl::{CustomType, Interface, Method};

use super::ProtocolError;

/// One served interface: its text (answered verbatim to `GetInterfaceDescription`) and its
/// parsed form (used to validate calls).
#[derive(Debug)]
pub(crate) struct ServedInterface {
    pub(crate) text: &'static str,
    pub(crate) idl: Interface<'static>,
}

impl ServedInterface {
    pub(crate) fn name(&self) -> &str {
        self.idl.name().as_str()
    }

    pub(crate) fn custom_type(&self, name: &str) -> Option<&CustomType<'static>> {
        self.idl.custom_types().find(|t| t.name().as_str() == name)
    }
}

/// A method looked up by its qualified name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MethodSpec<'a> {
    pub(crate) interface: &'a ServedInterface,
    pub(crate) method: &'a Method<'static>,
}

impl MethodSpec<'_> {
    /// Whether the IDL marks the method `[Requires 'more' flag]`.
    pub(crate) fn requires_more(&self) -> bool {
        self.method
            .comments()
            .any(|c| c.text().trim() == "[Requires 'more' flag]")
    }
}

/// All interfaces of one server, with an index of their methods.
#[derive(Debug)]
pub struct InterfaceSet {
    interfaces: Vec<ServedInterface>,
    methods: HashMap<String, (usize, usize)>,
}

impl InterfaceSet {
    /// Parses the given IDL texts.
    ///
    /// # Errors
    /// [`ProtocolError::Idl`] when a text does not parse, [`ProtocolError::DuplicateInterface`]
    /// when two texts declare the same interface.
    pub fn new(texts: &[&'static str]) -> Result<Self, ProtocolError> {
        let mut interfaces: Vec<ServedInterface> = Vec::new();
        for text in texts {
            let idl = Interface::try_from(*text).map_err(|e| ProtocolError::Idl(e.to_string()))?;
            if interfaces.iter().any(|i| i.name() == idl.name().as_str()) {
                return Err(ProtocolError::DuplicateInterface(
                    idl.name().as_str().to_owned(),
                ));
            }
            interfaces.push(ServedInterface { text, idl });
        }
        interfaces.sort_by(|a, b| a.name().cmp(b.name()));
        let mut methods = HashMap::new();
        for (i, iface) in interfaces.iter().enumerate() {
            for (m, method) in iface.idl.methods().enumerate() {
                methods.insert(
                    format!("{}.{}", iface.name(), method.name().as_str()),
                    (i, m),
                );
            }
        }
        Ok(Self {
            interfaces,
            methods,
        })
    }

    /// The served interface names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.interfaces.iter().map(ServedInterface::name)
    }

    /// Whether `name` is served.
    pub fn contains(&self, name: &str) -> bool {
        self.interface(name).is_some()
    }

    pub(crate) fn interface(&self, name: &str) -> Option<&ServedInterface> {
        self.interfaces.iter().find(|i| i.name() == name)
    }

    /// Every method served, by its qualified name.
    pub fn qualified_methods(&self) -> impl Iterator<Item = String> + '_ {
        self.interfaces.iter().flat_map(|interface| {
            interface
                .idl
                .methods()
                .map(move |method| format!("{}.{}", interface.name(), method.name().as_str()))
        })
    }

    pub(crate) fn method(&self, qualified: &str) -> Option<MethodSpec<'_>> {
        let &(i, m) = self.methods.get(qualified)?;
        let interface = &self.interfaces[i];
        let method = interface.idl.methods().nth(m)?;
        Some(MethodSpec { interface, method })
    }
}
