//! `list`, `status` and `show`: what the registry knows of its machines, and (for `status`)
//! their processes and what their cgroup uses.

use std::path::PathBuf;

use berth_interfaces::machine::{MachineClass, MachineInfo};
use berth_os::cgroup2;
use berth_os::proc::{self, ProcessTree};

use crate::cli::{Output, Scope};
use crate::client::Registry;
use crate::error::{Error, Result};
use crate::format::{self, Sink, Table};

const HOST: &str = ".host";

/// `list [--all] [--json]`.
///
/// # Errors
/// The registry cannot be reached or refused.
pub fn list(scope: &Scope, output: &Output, all: bool, json: bool) -> Result<()> {
    let mut registry = Registry::connect(scope)?;
    if json {
        let mut text = String::new();
        for machine in registry.list_all_raw()? {
            if all || machine["name"] != HOST {
                text.push_str(&machine.to_string());
                text.push('\n');
            }
        }
        return write(&mut Sink::open(output, false), &text);
    }
    let machines: Vec<MachineInfo> = registry
        .list_all()?
        .into_iter()
        .filter(|m| all || m.name != HOST)
        .collect();
    let mut table = Table::new(&["MACHINE", "CLASS", "SERVICE", "OS", "VERSION", "ADDRESSES"]);
    for machine in &machines {
        table.row(list_row(machine));
    }
    let mut sink = Sink::open(output, true);
    let mut text = table.render(!output.no_legend, sink.is_terminal());
    if !output.no_legend {
        text.push_str(&format!("\n{} machines listed.\n", table.len()));
    }
    write(&mut sink, &text)
}

fn list_row(machine: &MachineInfo) -> Vec<String> {
    let addresses: Vec<String> = machine
        .addresses
        .iter()
        .flatten()
        .map(format::address)
        .collect();
    vec![
        machine.name.clone(),
        machine.class.as_str().to_owned(),
        dash(machine.service.clone()),
        dash(os_field(machine, "ID")),
        dash(os_field(machine, "VERSION_ID")),
        dash((!addresses.is_empty()).then(|| addresses.join(", "))),
    ]
}

/// `status NAME…`.
///
/// # Errors
/// A machine is unknown, or the registry cannot be reached.
pub fn status(scope: &Scope, output: &Output, names: &[String]) -> Result<()> {
    let mut registry = Registry::connect(scope)?;
    let text = format::blocks(names, |name| Ok(status_text(&registry.get(name)?)))?;
    write(&mut Sink::open(output, true), &text)
}

fn status_text(machine: &MachineInfo) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let now = now_micros();
    if let Some(since) = machine.timestamp.as_ref().and_then(|t| t.realtime) {
        let ago = format::ago(since, now);
        fields.push(("Since", format!("{}; {ago}", format::timestamp(since))));
    }
    let leader = machine.leader.as_ref().map(|p| p.pid);
    if let Some(pid) = leader {
        fields.push(("Leader", process(pid)));
    }
    if let Some(pid) = machine.supervisor.as_ref().map(|p| p.pid) {
        fields.push(("Supervisor", process(pid)));
    }
    let service = machine.service.clone().unwrap_or_else(|| "n/a".into());
    fields.push((
        "Service",
        format!("{service}; class {}", machine.class.as_str()),
    ));
    push(&mut fields, "Root", machine.root_directory.clone());
    let addresses: Vec<String> = machine
        .addresses
        .iter()
        .flatten()
        .map(format::address)
        .collect();
    push(
        &mut fields,
        "Address",
        (!addresses.is_empty()).then(|| addresses.join("\n")),
    );
    push(&mut fields, "OS", os_field(machine, "PRETTY_NAME"));
    push(
        &mut fields,
        "UID Shift",
        machine.uid_shift.map(|s| s.to_string()),
    );
    push(&mut fields, "Control", machine.control_address.clone());
    push(&mut fields, "Unit", machine.unit.clone());
    let cgroup = leader.and_then(own_cgroup);
    if let Some((name, path)) = &cgroup {
        fields.push(("CGroup", name.clone()));
        for (label, value) in usage(path) {
            fields.push((label, value));
        }
    }
    let mut text = format!("{}\n", machine.name);
    for (label, value) in fields {
        for (i, line) in value.lines().enumerate() {
            let label = if i == 0 { label } else { "" };
            let colon = if i == 0 { ":" } else { " " };
            text.push_str(&format!("{label:>12}{colon} {line}\n"));
        }
    }
    if let (Some(pid), true) = (leader, machine.class != MachineClass::Host) {
        text.push_str(&tree(pid));
    }
    text
}

fn push(fields: &mut Vec<(&'static str, String)>, label: &'static str, value: Option<String>) {
    if let Some(value) = value {
        fields.push((label, value));
    }
}

/// `PID (comm)`, or just the PID once the process is gone.
fn process(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => format!("{pid} ({})", comm.trim()),
        Err(_) => pid.to_string(),
    }
}

/// The leader's cgroup, when it is one of the machine's own (not the root, not ours): its
/// name as `/proc/PID/cgroup` shows it, and its directory.
fn own_cgroup(leader: u32) -> Option<(String, PathBuf)> {
    let name = proc::cgroup_path(leader)?;
    if name == "/" || proc::cgroup_path(0).as_deref() == Some(name.as_str()) {
        return None;
    }
    let path = cgroup2::mount()?.join(name.trim_start_matches('/'));
    Some((name, path))
}

/// Tasks, memory and CPU time of a cgroup, as far as its controllers tell.
fn usage(cgroup: &std::path::Path) -> Vec<(&'static str, String)> {
    let read = |file: &str| proc::read_small(cgroup.join(file)).ok();
    let mut usage = Vec::new();
    if let Some(tasks) = read("pids.current") {
        usage.push(("Tasks", tasks.trim().to_owned()));
    }
    if let Some(bytes) = read("memory.current").and_then(|m| m.trim().parse::<u64>().ok()) {
        usage.push(("Memory", size(bytes)));
    }
    let cpu = read("cpu.stat").and_then(|stat| {
        stat.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    if let Some(micros) = cpu {
        usage.push(("CPU", format!("{}ms", micros / 1000)));
    }
    usage
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// The leader and its descendants, as a tree.
fn tree(leader: u32) -> String {
    let processes = ProcessTree::scan();
    let mut text = String::new();
    branch(&processes, leader, "", true, true, &mut text);
    text
}

fn branch(
    processes: &ProcessTree,
    pid: u32,
    prefix: &str,
    last: bool,
    top: bool,
    text: &mut String,
) {
    let (joint, more) = match (top, last) {
        (true, _) => ("", ""),
        (false, true) => ("└─", "  "),
        (false, false) => ("├─", "│ "),
    };
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    text.push_str(&format!("{:>14}{prefix}{joint}{pid} {command}\n", ""));
    let mut children = processes.children_of(pid);
    children.sort_unstable();
    let prefix = format!("{prefix}{more}");
    for (i, child) in children.iter().enumerate() {
        branch(
            processes,
            *child,
            &prefix,
            i + 1 == children.len(),
            false,
            text,
        );
    }
}

/// `show NAME…`: KEY=VALUE lines, a blank line between machines.
///
/// # Errors
/// A machine is unknown, or the registry cannot be reached.
pub fn show(scope: &Scope, output: &Output, names: &[String]) -> Result<()> {
    let mut registry = Registry::connect(scope)?;
    let mut text = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        for (key, value) in properties(&registry.get(name)?) {
            text.push_str(&format!("{key}={value}\n"));
        }
    }
    write(&mut Sink::open(output, false), &text)
}

/// A machine's properties, named as `machinectl show` names them where it has them.
fn properties(machine: &MachineInfo) -> Vec<(&'static str, String)> {
    let timestamp = machine.timestamp.unwrap_or_default();
    let addresses: Vec<String> = machine
        .addresses
        .iter()
        .flatten()
        .map(format::address)
        .collect();
    let candidates = [
        ("Name", Some(machine.name.clone())),
        ("Id", machine.id.clone()),
        ("Class", Some(machine.class.as_str().to_owned())),
        ("Service", machine.service.clone()),
        ("Unit", machine.unit.clone()),
        ("Subgroup", machine.subgroup.clone()),
        ("Leader", machine.leader.as_ref().map(|p| p.pid.to_string())),
        (
            "Supervisor",
            machine.supervisor.as_ref().map(|p| p.pid.to_string()),
        ),
        ("Timestamp", timestamp.realtime.map(|t| t.to_string())),
        (
            "TimestampMonotonic",
            timestamp.monotonic.map(|t| t.to_string()),
        ),
        ("RootDirectory", machine.root_directory.clone()),
        ("ControlAddress", machine.control_address.clone()),
        ("VSockCID", machine.v_sock_cid.map(|c| c.to_string())),
        ("SSHAddress", machine.ssh_address.clone()),
        ("SSHPrivateKeyPath", machine.ssh_private_key_path.clone()),
        ("UID", machine.uid.map(|u| u.to_string())),
        ("UIDShift", machine.uid_shift.map(|u| u.to_string())),
        (
            "Addresses",
            (!addresses.is_empty()).then(|| addresses.join(" ")),
        ),
        (
            "OSRelease",
            machine.os_release.as_ref().map(|os| os.join(" ")),
        ),
    ];
    candidates
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
        .collect()
}

fn os_field(machine: &MachineInfo, key: &str) -> Option<String> {
    machine.os_release.as_ref()?.iter().find_map(|pair| {
        let value = pair.strip_prefix(key)?.strip_prefix('=')?;
        Some(value.trim_matches('"').to_owned())
    })
}

fn dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn write(sink: &mut Sink, text: &str) -> Result<()> {
    sink.write(text)
        .map_err(Error::local("Writing to standard output"))
}
