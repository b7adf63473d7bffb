//! The registry and a machine's controller (`controlAddress`): Terminate goes through it, its
//! death ends the machine, and nobody else's controller is ever called.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_interfaces::client::MachineProxy;
use berth_interfaces::machine::{ListRequest, MachineLookup};
use berth_tests::daemon::Registry;
use berth_tests::machines::wait_gone;
use berth_tests::process::Proc;
use berth_tests::process::is_dead;
use berth_tests::{require, wait};

/// The python controller fixture, running one machine.
struct Controller {
    proc: Proc,
    socket: PathBuf,
    cgroup: PathBuf,
    leader: u32,
    child: u32,
}

impl Controller {
    fn start(registry: &Registry, name: &str) -> Self {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let idl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interfaces/idl");
        let socket = registry.runtime_dir().join(format!("{name}.control"));
        let cgroup = registry
            .cgroup_root()
            .expect("a cgroup root")
            .join(format!("{name}-payload"));
        let mut proc = Proc::spawn(
            Command::new(require::PYTHON_VARLINK)
                .arg(fixtures.join("controller.py"))
                .args([registry.socket().as_os_str(), socket.as_os_str()])
                .arg(name)
                .args([cgroup.as_os_str(), idl.as_os_str()])
                .stdout(Stdio::piped()),
        );
        let mut line = String::new();
        BufReader::new(proc.child().stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.first(), Some(&"ready"), "controller said {line:?}");
        Self {
            proc,
            socket,
            cgroup,
            leader: fields[1].parse().unwrap(),
            child: fields[2].parse().unwrap(),
        }
    }

    fn terminate_calls(&self) -> usize {
        let log = self.socket.with_extension("control.log");
        std::fs::read_to_string(log).map_or(0, |l| l.lines().count())
    }
}

fn ready() -> bool {
    require::root() && require::python_varlink()
}

#[tokio::test]
async fn terminate_goes_through_the_controller() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let controller = Controller::start(&registry, "ctl");
    let mut conn = registry.connect().await;
    let info = conn
        .list(&ListRequest {
            lookup: MachineLookup::by_name("ctl"),
            ..ListRequest::default()
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.control_address.as_deref(), controller.socket.to_str());
    let state = std::fs::read_to_string(registry.state_dir().join("ctl")).unwrap();
    let adopted = format!("ADOPTED_CGROUP={}", controller.cgroup.display());
    assert!(state.lines().any(|l| l == adopted), "{state}");

    conn.terminate(&MachineLookup::by_name("ctl"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(controller.terminate_calls(), 1);
    wait_gone(&registry, "ctl").await;
    wait::until("the machine's processes to end", || {
        is_dead(controller.leader) && is_dead(controller.child)
    });
}

#[tokio::test]
async fn a_dead_controller_takes_its_machine_along() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let controller = Controller::start(&registry, "orphaned");
    let pid = rustix::process::Pid::from_raw(controller.proc.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    wait_gone(&registry, "orphaned").await;
    wait::until("the escaped child to be killed with the cgroup", || {
        is_dead(controller.child)
    });
    assert_eq!(controller.terminate_calls(), 0);
}

#[tokio::test]
async fn another_machines_controller_is_never_called() {
    if !(ready() && require::varlinkctl()) {
        return;
    }
    let registry = Registry::start();
    let controller = Controller::start(&registry, "victim");
    let mut leader = Proc::sleeper();
    // Registered by varlinkctl, pointing at the victim's controller.
    let params = serde_json::json!({
        "name": "spoof", "class": "container", "leader": leader.pid(),
        "controlAddress": controller.socket,
    });
    berth_tests::machines::register_with_varlinkctl(&registry, &params);
    let mut conn = registry.connect().await;
    conn.terminate(&MachineLookup::by_name("spoof"))
        .await
        .unwrap()
        .unwrap();
    wait::until("the spoofing machine's leader to get SIGTERM", || {
        leader.has_exited()
    });
    wait_gone(&registry, "spoof").await;
    assert_eq!(
        controller.terminate_calls(),
        0,
        "the victim's controller was called"
    );
    assert!(!is_dead(controller.leader));
}

#[tokio::test]
async fn a_machine_registered_by_a_tool_outlives_the_tool() {
    if !(ready() && require::varlinkctl()) {
        return;
    }
    let registry = Registry::start();
    // The control socket is served by the process that runs another machine, not by the
    // registrant (varlinkctl), which exits at once.
    let controller = Controller::start(&registry, "manager");
    let leader = Proc::sleeper();
    let params = serde_json::json!({
        "name": "tooled", "class": "container", "leader": leader.pid(),
        "controlAddress": controller.socket,
    });
    berth_tests::machines::register_with_varlinkctl(&registry, &params);
    wait::until("the registry to see who serves the control address", || {
        registry
            .log()
            .contains("The supervisor does not serve the control address")
    });
    let mut conn = registry.connect().await;
    let info = conn
        .list(&ListRequest {
            lookup: MachineLookup::by_name("tooled"),
            ..ListRequest::default()
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.leader.map(|l| l.pid), Some(leader.pid()));
    assert!(!is_dead(leader.pid()));
}
