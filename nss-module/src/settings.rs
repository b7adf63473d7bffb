//! What the environment decides: where the registry listens, and whether asking it could
//! deadlock.

use std::ffi::OsString;
use std::path::PathBuf;

/// The registry's socket in system scope.
pub const DEFAULT_SOCKET: &str = "/run/systemd/machine/io.systemd.Machine";

/// Overrides [`DEFAULT_SOCKET`] (for tests); ignored in setuid and setgid programs.
pub const SOCKET_VARIABLE: &str = "BERTH_MACHINE_SOCKET";

/// The registry's own unit: lookups made while the service manager activates it must not ask
/// it (spec §4.2 step 3, with systemd-machined's unit name replaced).
pub const REGISTRY_UNIT: &str = "berth-machine-registry.service";

/// How one lookup runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The registry's socket.
    pub socket: PathBuf,
    /// The lookup comes from the activation of the registry itself: fail with `EDEADLK`
    /// instead of asking.
    pub avoid_deadlock: bool,
}

/// What the settings are made of, read by the caller (the FFI shim reads the real process).
#[derive(Debug, Clone, Copy)]
pub struct Process<F> {
    /// `getauxval(AT_SECURE)`: a setuid or setgid program, whose environment is not trusted.
    pub secure: bool,
    /// The effective UID is 0.
    pub root: bool,
    /// Reads an environment variable.
    pub var: F,
}

impl Settings {
    /// The settings of `process`: `secure_getenv` semantics for the socket override; the
    /// deadlock guard only for root, as systemd ignores these variables for everyone else.
    pub fn of<F: Fn(&str) -> Option<OsString>>(process: &Process<F>) -> Self {
        let var = &process.var;
        let socket = (!process.secure)
            .then(|| var(SOCKET_VARIABLE))
            .flatten()
            .filter(|path| !path.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);
        let avoid_deadlock = process.root
            && var("SYSTEMD_ACTIVATION_UNIT").is_some_and(|unit| unit == REGISTRY_UNIT)
            && var("SYSTEMD_ACTIVATION_SCOPE").is_some_and(|scope| scope == "system");
        Self {
            socket,
            avoid_deadlock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secure: bool, root: bool, env: &[(&str, &str)]) -> Settings {
        let var = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        Settings::of(&Process { secure, root, var })
    }

    const ACTIVATING: [(&str, &str); 2] = [
        ("SYSTEMD_ACTIVATION_UNIT", REGISTRY_UNIT),
        ("SYSTEMD_ACTIVATION_SCOPE", "system"),
    ];

    #[test]
    fn the_socket_is_the_system_one_unless_overridden_in_a_trusted_environment() {
        let own = [(SOCKET_VARIABLE, "/tmp/x/sock")];
        assert_eq!(
            settings(false, false, &[]).socket,
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            settings(false, false, &own).socket,
            PathBuf::from("/tmp/x/sock")
        );
        assert_eq!(
            settings(false, true, &own).socket,
            PathBuf::from("/tmp/x/sock")
        );
        assert_eq!(
            settings(true, false, &own).socket,
            PathBuf::from(DEFAULT_SOCKET)
        );
        let empty = [(SOCKET_VARIABLE, "")];
        assert_eq!(
            settings(false, false, &empty).socket,
            PathBuf::from(DEFAULT_SOCKET)
        );
    }

    #[test]
    fn only_root_activating_the_registry_in_system_scope_avoids_it() {
        assert!(settings(false, true, &ACTIVATING).avoid_deadlock);
        assert!(!settings(false, false, &ACTIVATING).avoid_deadlock);
        assert!(!settings(false, true, &ACTIVATING[..1]).avoid_deadlock);
        let user_scope = [ACTIVATING[0], ("SYSTEMD_ACTIVATION_SCOPE", "user")];
        assert!(!settings(false, true, &user_scope).avoid_deadlock);
        let machined = [
            ("SYSTEMD_ACTIVATION_UNIT", "systemd-machined.service"),
            ACTIVATING[1],
        ];
        assert!(!settings(false, true, &machined).avoid_deadlock);
        assert!(!settings(false, true, &[]).avoid_deadlock);
    }
}
