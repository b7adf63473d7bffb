//! The machine in the registry: `Register` with the payload as leader and our control socket
//! as `controlAddress` (which makes us the machine's supervisor), `Unregister` at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_interfaces::blocking::{CallError, Connection};
use berth_interfaces::machine::{MachineClass, MachineLookup, ProcessId, RegisterRequest};
use serde_json::Value;

use crate::payload::Payload;

/// How long the registry may take to answer one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reboot waits for the registry to let go of the previous boot's machine.
const NAME_WAIT: Duration = Duration::from_secs(5);

const MACHINE_EXISTS: &str = "io.systemd.Machine.MachineExists";
const NO_SUCH_MACHINE: &str = "io.systemd.Machine.NoSuchMachine";

/// Registers and unregisters one machine.
#[derive(Debug, Clone)]
pub struct Registrar {
    /// The registry socket.
    pub socket: PathBuf,
    /// Machine name.
    pub name: String,
    /// Machine class.
    pub class: MachineClass,
    /// Registered as the service.
    pub service: String,
    /// Our control socket.
    pub control_address: String,
}

impl Registrar {
    /// Registers `payload` as the machine's leader. After a reboot (`boot > 1`) the registry
    /// may still hold the previous boot's machine for a moment; then this retries.
    ///
    /// # Errors
    /// The registry refused or could not be reached.
    pub fn register(&self, payload: &Payload, boot: u32) -> Result<(), CallError> {
        let request = RegisterRequest {
            name: self.name.clone(),
            class: self.class,
            service: Some(self.service.clone()),
            leader_process_id: Some(process_id(payload)),
            control_address: Some(self.control_address.clone()),
            ..RegisterRequest::default()
        };
        let deadline = Instant::now() + NAME_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.call("io.systemd.Machine.Register", &request) {
                Err(e)
                    if e.error_name() == Some(MACHINE_EXISTS)
                        && boot > 1
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// Unregisters the machine whose leader is (or was) `payload`; nothing happens when the
    /// registry has already removed it, or when the name now belongs to another machine.
    ///
    /// # Errors
    /// The registry refused or could not be reached.
    pub fn unregister(&self, payload: &Payload) -> Result<(), CallError> {
        let lookup = MachineLookup {
            name: Some(self.name.clone()),
            pid: Some(process_id(payload)),
            ..MachineLookup::default()
        };
        match self.call("io.systemd.Machine.Unregister", &lookup) {
            Err(e) if e.error_name() == Some(NO_SUCH_MACHINE) => Ok(()),
            other => other,
        }
    }

    fn call<P: serde::Serialize>(&self, method: &str, parameters: &P) -> Result<(), CallError> {
        let mut conn = Connection::connect(&self.socket, CALL_TIMEOUT)?;
        conn.call::<_, Value>(method, parameters).map(drop)
    }
}

fn process_id(payload: &Payload) -> ProcessId {
    ProcessId {
        pid: payload.pid,
        pidfd_id: (payload.pidfd_id != 0).then_some(payload.pidfd_id),
        boot_id: None,
    }
}
