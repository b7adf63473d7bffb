//! The registry's state files (`/run/systemd/machines/NAME`): written by one registry, read
//! back by the next after a restart, possibly half written, possibly by machined.
//!
//! Input: a mode byte, then a file's text (mode 0; the seeds are files as the registry and
//! machined write them), or the bytes entries (1) or a machine's fields (2) are drawn from.
//!
//! Properties:
//! * any text parses, and parsing what was formatted from a parse gives the same entries;
//! * `format` then `parse` gives back every entry (any key the registry writes, any value);
//! * a machine as the registry holds it (every value the writer can produce: what `Register`
//!   lets through), saved and read back by restore's pure part, has the same fields (an empty
//!   value is no value);
//! * whatever restore makes of a text, saved again and read back, stays the same.

#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use berth_interfaces::machine::{MachineClass, Timestamp};
use berth_machine_registry::idmap::UserNamespace;
use berth_machine_registry::machine::{Machine, unit_of_cgroup};
use berth_machine_registry::names;
use berth_machine_registry::restore::{SavedMachine, SavedProcess, saved_machine};
use berth_machine_registry::state_file;
use berth_os::process::ProcessRef;
use libfuzzer_sys::fuzz_target;

/// The keys the registry writes, and a few it does not.
const KEYS: &[&str] = &[
    "NAME",
    "UID",
    "SCOPE",
    "SUBGROUP",
    "CGROUP",
    "ADOPTED_CGROUP",
    "SERVICE",
    "ROOT",
    "ID",
    "LEADER",
    "LEADER_PIDFDID",
    "SUPERVISOR",
    "SUPERVISOR_PIDFDID",
    "CLASS",
    "REALTIME",
    "MONOTONIC",
    "NETIF",
    "VSOCK_CID",
    "SSH_ADDRESS",
    "SSH_PRIVATE_KEY_PATH",
    "CONTROL_ADDRESS",
    "STOPPING",
    "UNKNOWN",
    "X_1",
];

/// The fields of a machine, as a `Register` call may set them.
#[derive(Debug, Arbitrary)]
struct Fields {
    name: String,
    id: Option<[u8; 16]>,
    vm: bool,
    service: Option<String>,
    root_directory: Option<String>,
    cgroup: Option<String>,
    supervisor: bool,
    realtime: Option<u64>,
    monotonic: Option<u64>,
    netif: Vec<i32>,
    vsock_cid: Option<u32>,
    ssh_address: Option<String>,
    ssh_private_key_path: Option<String>,
    control_address: Option<String>,
    uid: u32,
    stopping: bool,
}

/// This process, to stand for a machine's leader and supervisor.
fn me() -> &'static ProcessRef {
    static ME: OnceLock<ProcessRef> = OnceLock::new();
    ME.get_or_init(|| ProcessRef::open(std::process::id()).expect("our own pidfd"))
}

fn saved_me() -> SavedProcess {
    SavedProcess {
        pid: me().pid(),
        pidfd_id: me().id(),
    }
}

/// A machine with `fields` kept as far as the registry's checks keep them.
fn machine(fields: Fields) -> Machine {
    let checked = |value: Option<String>, valid: fn(&str) -> bool| value.filter(|v| valid(v));
    let name = Some(fields.name)
        .filter(|n| names::is_valid_machine_name(n))
        .unwrap_or_else(|| "demo".to_owned());
    let id = fields.id.map(|bytes| {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        names::parse_id128(&hex).expect("32 hex digits")
    });
    let (unit, subgroup) = fields
        .cgroup
        .as_deref()
        .map(unit_of_cgroup)
        .unwrap_or_default();
    Machine {
        name,
        instance: 0,
        id: id.flatten(),
        class: if fields.vm {
            MachineClass::Vm
        } else {
            MachineClass::Container
        },
        service: fields.service,
        root_directory: checked(fields.root_directory, names::is_absolute_normalized_path),
        unit,
        subgroup,
        cgroup: None,
        leader: me().clone(),
        supervisor: fields.supervisor.then(|| me().clone()),
        timestamp: Timestamp {
            realtime: fields.realtime,
            monotonic: fields.monotonic,
        },
        netif: fields.netif.into_iter().filter(|&i| i > 0).collect(),
        vsock_cid: fields.vsock_cid.filter(|&c| c > 2 && c < u32::MAX),
        ssh_address: checked(fields.ssh_address, names::is_safe_string),
        ssh_private_key_path: checked(fields.ssh_private_key_path, names::is_absolute_path),
        control_address: checked(fields.control_address, names::is_absolute_normalized_path),
        userns: UserNamespace::Host,
        network: Default::default(),
        uid: fields.uid,
        stopping: fields.stopping,
    }
}

/// What restore must read back from `machine`'s state file.
fn expected(machine: &Machine) -> SavedMachine {
    let some = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    SavedMachine {
        name: machine.name.clone(),
        id: machine.id.clone(),
        class: machine.class,
        service: some(&machine.service),
        root_directory: some(&machine.root_directory),
        unit: some(&machine.unit),
        subgroup: some(&machine.subgroup),
        leader: saved_me(),
        supervisor: machine.supervisor.as_ref().map(|_| saved_me()),
        timestamp: machine.timestamp,
        netif: machine.netif.clone(),
        vsock_cid: machine.vsock_cid,
        ssh_address: some(&machine.ssh_address),
        ssh_private_key_path: some(&machine.ssh_private_key_path),
        control_address: some(&machine.control_address),
        uid: machine.uid,
        stopping: machine.stopping,
    }
}

/// Saves `machine` and reads it back as restore does.
fn save_and_restore(machine: &Machine) -> SavedMachine {
    let text = state_file::format(&machine.state_entries());
    let restored = saved_machine(&machine.name, &state_file::parse(&text));
    restored.unwrap_or_else(|reason| panic!("a saved machine is not restored ({reason}):\n{text}"))
}

/// A machine of `saved`'s fields, led by this process.
fn machine_of(saved: SavedMachine) -> Machine {
    let supervisor = saved.supervisor.map(|_| me().clone());
    saved.into_machine(me().clone(), supervisor, UserNamespace::Host)
}

fn text(text: &str) {
    let pairs = state_file::parse_pairs(text);
    for (key, _) in &pairs {
        assert!(!key.contains(['=', '\n']), "a key holds '=' or a newline");
    }
    let entries: Vec<(&str, Option<String>)> = pairs
        .iter()
        .map(|(key, value)| (key.as_str(), Some(value.clone())))
        .collect();
    assert_eq!(
        state_file::parse_pairs(&state_file::format(&entries)),
        pairs,
        "what was read, written again, reads differently"
    );
    let map = state_file::parse(text);
    let file = map
        .get("NAME")
        .filter(|n| names::is_valid_machine_name(n))
        .map_or("demo", String::as_str);
    if let Ok(saved) = saved_machine(file, &map) {
        let machine = machine_of(saved);
        assert_eq!(save_and_restore(&machine), expected(&machine));
    }
}

fn entries(entries: Vec<(u8, Option<String>)>) {
    let entries: Vec<(&str, Option<String>)> = entries
        .into_iter()
        .map(|(key, value)| (KEYS[usize::from(key) % KEYS.len()], value))
        .collect();
    let written: Vec<(String, String)> = entries
        .iter()
        .filter_map(|(key, value)| Some(((*key).to_owned(), value.clone()?)))
        .collect();
    let text = state_file::format(&entries);
    assert_eq!(
        state_file::parse_pairs(&text),
        written,
        "entries do not read back:\n{text}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let u = Unstructured::new(rest);
    match mode % 3 {
        0 => text(&String::from_utf8_lossy(rest)),
        1 => {
            if let Ok(list) = Vec::<(u8, Option<String>)>::arbitrary_take_rest(u) {
                entries(list);
            }
        }
        _ => {
            if let Ok(fields) = Fields::arbitrary_take_rest(u) {
                let machine = machine(fields);
                assert_eq!(save_and_restore(&machine), expected(&machine));
            }
        }
    }
});
