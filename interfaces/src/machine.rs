//! Wire types of `io.systemd.Machine` (`idl/io.systemd.Machine.varlink`).
//!
//! Field names follow the IDL exactly; optional inputs are `Option` and are left out of the JSON
//! when `None`. Reply structs keep the field order of systemd-machined's `List` replies.

use serde::{Deserialize, Serialize};

use crate::errors::wire_errors;

/// The class of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineClass {
    /// An OS container sharing the host kernel.
    #[default]
    Container,
    /// A virtual machine.
    Vm,
    /// The host itself (reserved, cannot be registered).
    Host,
}

impl MachineClass {
    /// The IDL spelling (`container`, `vm`, `host`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Vm => "vm",
            Self::Host => "host",
        }
    }

    /// Parses the IDL spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Container, Self::Vm, Self::Host]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// What `Kill` sends its signal to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KillWhom {
    /// The leader process only.
    Leader,
    /// The supervisor process only.
    Supervisor,
    /// Every process of the machine.
    #[default]
    All,
}

/// Whether `List` includes metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcquireMetadata {
    /// No metadata.
    #[default]
    No,
    /// Metadata; the first failure fails the reply.
    Yes,
    /// Metadata; failures leave the field out.
    Graceful,
}

/// A robust process reference: PID plus the pidfs inode of its pidfd and the boot it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessId {
    /// Numeric UNIX PID.
    pub pid: u32,
    /// 64-bit inode number of the pidfd, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfd_id: Option<u64>,
    /// Boot ID (32 lowercase hex digits) the inode number belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

impl ProcessId {
    /// A reference by bare PID.
    pub fn from_pid(pid: u32) -> Self {
        Self {
            pid,
            ..Self::default()
        }
    }
}

/// A timestamp in µs on both clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timestamp {
    /// CLOCK_REALTIME, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<u64>,
    /// CLOCK_MONOTONIC, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monotonic: Option<u64>,
}

/// One network address of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Interface index inside the machine (left out when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub family: i32,
    /// The address bytes.
    pub address: Vec<u8>,
}

/// A signal given by number or by name (`"SIGTERM"`), as sd-varlink accepts both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalSpec {
    /// A signal number.
    Number(i64),
    /// A signal name such as `SIGTERM` or `TERM`.
    Name(String),
}

impl From<i32> for SignalSpec {
    fn from(n: i32) -> Self {
        Self::Number(n.into())
    }
}

/// Parameters of `Register`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// Machine name (hostname rules).
    pub name: String,
    /// 128-bit machine ID as 32 hex digits or a UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Free-form name of the registering software.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `container` or `vm`.
    pub class: MachineClass,
    /// Leader PID as a plain integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<i64>,
    /// Leader as a robust process reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_process_id: Option<ProcessId>,
    /// Deprecated and ignored: the supervisor is derived from the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<i64>,
    /// Deprecated and ignored: the supervisor is derived from the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_process_id: Option<ProcessId>,
    /// Root directory of the machine on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    /// Host-side network interface indices of the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_indices: Option<Vec<i64>>,
    /// AF_VSOCK CID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v_sock_cid: Option<i64>,
    /// SSH address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_address: Option<String>,
    /// Path of the SSH private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private_key_path: Option<String>,
    /// Socket path of the machine's `io.systemd.MachineInstance` server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_address: Option<String>,
    /// Whether the registry creates a cgroup of its own for the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocate_unit: Option<bool>,
    /// Accepted for compatibility; Berth does not ask polkit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_interactive_authentication: Option<bool>,
}

/// The fields that name a machine: all of `Unregister` and `Terminate`, and flattened into
/// `Kill`, `List` and `MapFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineLookup {
    /// Machine name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A process of the machine; `{"pid": 0}` is the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<ProcessId>,
    /// Accepted for compatibility; Berth does not ask polkit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_interactive_authentication: Option<bool>,
}

impl MachineLookup {
    /// A lookup by name.
    pub fn by_name(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// A lookup by PID (`0` is the caller).
    pub fn by_pid(pid: u32) -> Self {
        Self {
            pid: Some(ProcessId::from_pid(pid)),
            ..Self::default()
        }
    }
}

/// Parameters of `Kill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KillRequest {
    /// Which machine.
    #[serde(flatten)]
    pub lookup: MachineLookup,
    /// Whom to signal (default `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whom: Option<KillWhom>,
    /// The signal.
    pub signal: SignalSpec,
}

/// Parameters of `List`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    /// Which machine.
    #[serde(flatten)]
    pub lookup: MachineLookup,
    /// Whether to include `addresses`, `OSRelease` and `UIDShift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_metadata: Option<AcquireMetadata>,
}

/// Parameters of `MapFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapFromRequest {
    /// Which machine.
    #[serde(flatten)]
    pub lookup: MachineLookup,
    /// A UID inside the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// A GID inside the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// How `Open` opens a terminal in the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenMode {
    /// A pseudo-terminal of the machine, nothing started on it.
    Tty,
    /// A login prompt on it.
    Login,
    /// A shell (or `path` with `args`) on it, as `user`.
    Shell,
}

/// Parameters of `Open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenRequest {
    /// Which machine.
    #[serde(flatten)]
    pub lookup: MachineLookup,
    /// What to open.
    pub mode: OpenMode,
    /// `shell`: the user inside the machine (default `root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `shell`: the program (default the user's login shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `shell`: its arguments (`argv[1…]`; default `-l` for the login shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// `shell`: more environment, `KEY=VALUE` each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<String>>,
}

/// Reply of `Open`; the pty's master comes as descriptor number `pty_file_descriptor` of the
/// reply's `SCM_RIGHTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenReply {
    /// Index of the pty master among the passed descriptors.
    pub pty_file_descriptor: i64,
    /// The pty's path inside the machine.
    pub pty_path: String,
}

/// Reply of `OpenRootDirectory`; the directory comes as descriptor number `file_descriptor`
/// of the reply's `SCM_RIGHTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenRootDirectoryReply {
    /// Index of the directory among the passed descriptors.
    pub file_descriptor: i64,
}

/// Parameters of `BindMount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindMountRequest {
    /// Which machine.
    #[serde(flatten)]
    pub lookup: MachineLookup,
    /// The host file or directory, an absolute path.
    pub source: String,
    /// Where it appears in the machine (default: `source`), an absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Whether the mount is read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Whether a missing destination is made first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mkdir: Option<bool>,
}

/// Parameters of `CopyFrom` and `CopyTo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyRequest {
    /// Which machine.
    #[serde(flatten)]
    pub lookup: MachineLookup,
    /// What to copy, an absolute path (in the machine for `CopyFrom`, on the host for `CopyTo`).
    pub source: String,
    /// Where to (default: `source`), an absolute path on the other side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Whether an existing destination is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<bool>,
}

/// Parameters of `MapTo`, and the IDs of a `MapFrom` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MappedIds {
    /// A UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// A GID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// Reply of `MapTo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapToReply {
    /// The UID inside the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The GID inside the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The machine that owns them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_name: Option<String>,
}

/// One `List` reply: a machine and, on request, its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineInfo {
    /// Machine name.
    pub name: String,
    /// 128-bit ID, 32 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The class.
    pub class: MachineClass,
    /// The registering software.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Root directory on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    /// The unit (cgroup) the machine lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The cgroup path of the machine below its unit's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subgroup: Option<String>,
    /// The leader process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<ProcessId>,
    /// The supervisor process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<ProcessId>,
    /// When the machine was registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// AF_VSOCK CID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v_sock_cid: Option<u32>,
    /// SSH address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_address: Option<String>,
    /// Path of the SSH private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private_key_path: Option<String>,
    /// Socket path of the machine's `io.systemd.MachineInstance` server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_address: Option<String>,
    /// Network addresses (metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<Address>>,
    /// os-release `KEY=VALUE` pairs (metadata).
    #[serde(rename = "OSRelease", default, skip_serializing_if = "Option::is_none")]
    pub os_release: Option<Vec<String>>,
    /// Base UID/GID of the machine's user namespace (metadata).
    #[serde(rename = "UIDShift", default, skip_serializing_if = "Option::is_none")]
    pub uid_shift: Option<u32>,
    /// UID of the user who registered the machine.
    #[serde(rename = "UID", default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

wire_errors! {
    /// Errors of `io.systemd.Machine`.
    pub enum MachineError in "io.systemd.Machine" {
        /// No matching machine currently running.
        NoSuchMachine,
        /// A machine of that name exists already.
        MachineExists,
        /// The machine does not use private networking.
        NoPrivateNetworking,
        /// The machine has no os-release information.
        NoOSReleaseInformation,
        /// The machine's UID/GID mapping is too complex to give a shift.
        NoUIDShift,
        /// The requested information is not available.
        NotAvailable,
        /// The requested operation is not supported.
        NotSupported,
        /// The machine has no IPC service.
        NoIPC,
        /// No such user.
        NoSuchUser,
        /// No such group.
        NoSuchGroup,
        /// The user is in the host's UID range.
        UserInHostRange,
        /// The group is in the host's GID range.
        GroupInHostRange,
        /// Too many operations are running (not in the IDL, but machined sends it).
        TooManyOperations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_reply_serializes_in_machined_field_order_and_omits_unset_fields() {
        let info = MachineInfo {
            name: "demo".into(),
            class: MachineClass::Container,
            leader: Some(ProcessId::from_pid(42)),
            os_release: Some(vec!["ID=debian".into()]),
            uid: Some(0),
            ..MachineInfo::default()
        };
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"name":"demo","class":"container","leader":{"pid":42},"OSRelease":["ID=debian"],"UID":0}"#
        );
    }

    #[test]
    fn signal_accepts_numbers_and_names() {
        let k: KillRequest =
            serde_json::from_value(json!({"name":"a","signal":"SIGTERM"})).unwrap();
        assert_eq!(k.signal, SignalSpec::Name("SIGTERM".into()));
        let k: KillRequest = serde_json::from_value(json!({"name":"a","signal":9})).unwrap();
        assert_eq!(k.signal, SignalSpec::Number(9));
    }

    #[test]
    fn errors_decode_with_or_without_empty_parameters_and_reject_other_replies() {
        for text in [
            r#"{"error":"io.systemd.Machine.NoSuchMachine"}"#,
            r#"{"error":"io.systemd.Machine.NoSuchMachine","parameters":{}}"#,
        ] {
            assert_eq!(
                serde_json::from_str::<MachineError>(text).unwrap(),
                MachineError::NoSuchMachine
            );
        }
        for text in [
            r#"{"parameters":{}}"#,
            r#"{"error":"io.systemd.Machine.Nope","parameters":{}}"#,
            r#"{"error":"org.varlink.service.ExpectedMore"}"#,
        ] {
            assert!(
                serde_json::from_str::<MachineError>(text).is_err(),
                "{text}"
            );
        }
        let system: crate::service::SystemError =
            serde_json::from_str(r#"{"error":"io.systemd.System","parameters":{"errno":17}}"#)
                .unwrap();
        assert_eq!(system, crate::service::SystemError::System { errno: 17 });
    }

    #[test]
    fn error_names_are_qualified_with_the_interface() {
        assert_eq!(
            MachineError::NoUIDShift.name(),
            "io.systemd.Machine.NoUIDShift"
        );
        assert_eq!(MachineError::NoIPC.to_string(), "io.systemd.Machine.NoIPC");
    }
}
