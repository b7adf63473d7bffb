//! Watching machines end, and ending them on request.
//!
//! This module knows the registry only through [`Registrations`] (which `manager` implements),
//! so the dependency points one way: the registry starts the watches, the watches report back
//! through the trait.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use berth_os::sys;
use rustix::event::epoll;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::task::AbortHandle;

use berth_interfaces::client::InstanceAction;

use crate::idmap::UserNamespace;
use crate::machine::Machine;
use crate::{control, kill};

/// What the watches need of the registry.
pub trait Registrations: Send + Sync + 'static {
    /// Whether registration `instance` of `name` is still in the registry.
    fn is_current(&self, name: &str, instance: u64) -> bool;
    /// Records that the user namespace of registration `instance` of `name` now reads `userns`.
    fn record_userns(&self, name: &str, instance: u64, userns: UserNamespace);
}

/// The leaders of all machines, watched through one epoll instance of their own that the
/// runtime polls as a single descriptor: watching a leader is one `epoll_ctl` when it is
/// registered and one when it leaves, with no task, no runtime registration and no wakeup of
/// another thread per machine. A leader's pidfd becomes readable when it exits; the watch then
/// reports the token it was added with, once (`EPOLLONESHOT`).
#[derive(Debug)]
pub struct LeaderWatch {
    epoll: Arc<AsyncFd<OwnedFd>>,
    task: OnceLock<AbortHandle>,
}

/// Exit reports handled per `epoll_wait`.
const EXITS_PER_WAIT: usize = 64;

impl LeaderWatch {
    /// A watch of no leader yet, which reports to nobody until [`LeaderWatch::report_to`].
    ///
    /// # Errors
    /// The epoll instance cannot be made or registered with the runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new() -> io::Result<Self> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        Ok(Self {
            epoll: Arc::new(sys::async_fd(epoll, Interest::READABLE)?),
            task: OnceLock::new(),
        })
    }

    /// From now on calls `exited` with the token of every leader that exits (only the first
    /// call counts).
    pub fn report_to(&self, exited: impl Fn(u64) + Send + 'static) {
        let epoll = Arc::clone(&self.epoll);
        self.task.get_or_init(|| {
            let task = tokio::spawn(async move {
                if let Err(error) = report_exits(&epoll, exited).await {
                    tracing::error!(%error, "Watching leaders failed, machines whose leader exits stay registered");
                }
            });
            task.abort_handle()
        });
    }

    /// Watches the leader behind `pidfd`, reported as `token` when it exits (at once if it
    /// has exited already). The pidfd must stay open until [`LeaderWatch::remove`].
    ///
    /// # Errors
    /// The error of `epoll_ctl` (such as `ENOMEM`).
    pub fn add(&self, pidfd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let flags = epoll::EventFlags::IN | epoll::EventFlags::ONESHOT;
        epoll::add(self.fd(), pidfd, epoll::EventData::new_u64(token), flags)?;
        Ok(())
    }

    /// Stops watching the leader behind `pidfd`.
    pub fn remove(&self, pidfd: BorrowedFd<'_>) {
        if let Err(error) = epoll::delete(self.fd(), pidfd) {
            tracing::debug!(%error, "Leader was not watched, ignoring");
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.get_ref().as_fd()
    }
}

impl Drop for LeaderWatch {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

async fn report_exits(epoll: &AsyncFd<OwnedFd>, exited: impl Fn(u64)) -> io::Result<()> {
    let mut tokens = Vec::with_capacity(EXITS_PER_WAIT);
    loop {
        let mut ready = epoll.readable().await?;
        if let Ok(result) = ready.try_io(|epoll| exited_tokens(epoll.as_fd(), &mut tokens)) {
            result?;
            tokens.drain(..).for_each(&exited);
        }
    }
}

/// The tokens of the leaders that exited, without waiting; `WouldBlock` when there is none.
fn exited_tokens(epoll: BorrowedFd<'_>, tokens: &mut Vec<u64>) -> io::Result<()> {
    let mut events = [std::mem::MaybeUninit::uninit(); EXITS_PER_WAIT];
    let none = rustix::time::Timespec::default();
    let (events, _) = epoll::wait(epoll, &mut events, Some(&none))?;
    if events.is_empty() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    tokens.extend(events.iter().map(|event| event.data.u64()));
    Ok(())
}

/// For a machine whose supervisor serves its `controlAddress` (a real supervisor, such as
/// `supervise` or the VMM that registered it): when the supervisor dies while the leader still
/// runs, nobody controls the machine any more, so it is killed (what is left of its cgroup,
/// else its process tree). Other machines keep running: their "supervisor" may just be the
/// short-lived tool that registered them, whatever control socket it named.
pub fn watch_controller<R: Registrations>(
    registry: Arc<R>,
    machine: Arc<Machine>,
) -> Option<AbortHandle> {
    machine.control_address.as_ref()?;
    let pidfd = Arc::clone(machine.supervisor.as_ref()?.fd());
    let task = tokio::spawn(async move {
        let served = tokio::time::timeout(CONTROLLER_CHECK, control::connect(&machine)).await;
        if !matches!(served, Ok(Ok(_))) {
            tracing::debug!(machine = %machine.name, "The supervisor does not serve the control address: the machine outlives it");
            return;
        }
        if let Ok(watch) = sys::async_shared_fd(pidfd, Interest::READABLE) {
            let _ = watch.readable().await;
        }
        let current = registry.is_current(&machine.name, machine.instance);
        if current && machine.leader.is_alive() {
            tracing::info!(machine = %machine.name, "The machine's supervisor died, killing the machine");
            if let Err(error) = kill::signal_all(&machine, libc::SIGKILL).await {
                tracing::warn!(machine = %machine.name, %error, "Killing failed, ignoring");
            }
        }
    });
    Some(task.abort_handle())
}

/// A container whose leader is in a user namespace of its own whose maps nobody wrote yet
/// (registered a moment too early): reads the maps again, with growing pauses and then once a
/// minute, until they are there, and records them. The kernel tells nobody when a map is
/// written, so this is the one place the registry looks again on a timer; it ends with the
/// machine. Nothing to do for any other machine.
pub fn watch_userns<R: Registrations>(
    registry: Arc<R>,
    machine: Arc<Machine>,
) -> Option<AbortHandle> {
    if !machine.userns.is_pending() {
        return None;
    }
    let task = tokio::spawn(async move {
        let pauses = USERNS_RECHECKS
            .into_iter()
            .chain(std::iter::repeat(USERNS_RECHECK_LATE));
        for pause in pauses {
            tokio::time::sleep(pause).await;
            match UserNamespace::of_process(machine.leader.pid()) {
                Ok(userns) if !userns.is_pending() => {
                    registry.record_userns(&machine.name, machine.instance, userns);
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    Some(task.abort_handle())
}

/// How long the check that a supervisor serves its control address may take.
const CONTROLLER_CHECK: Duration = Duration::from_secs(5);
/// Pauses between the first readings of a pending user namespace's maps (a minute in all)...
const USERNS_RECHECKS: [Duration; 8] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(40),
];
/// ...and between the later ones.
const USERNS_RECHECK_LATE: Duration = Duration::from_secs(60);

/// Asks the machine to end: through its controller's `io.systemd.MachineInstance.Terminate`
/// if it has one, else SIGTERM to its supervisor if that lives, else SIGTERM to all its
/// processes. If it is still registered after `timeout`, every process of it is killed.
///
/// # Errors
/// The last fallback, signalling the machine's processes, failed.
pub async fn terminate<R: Registrations>(
    registry: &Arc<R>,
    machine: &Arc<Machine>,
    timeout: Duration,
) -> io::Result<()> {
    let controller_asked = match control::call(machine, InstanceAction::Terminate).await {
        Ok(()) => true,
        Err(error) if machine.control_address.is_some() => {
            tracing::info!(machine = %machine.name, %error, "The controller did not terminate the machine, signalling instead");
            false
        }
        Err(_) => false,
    };
    let supervisor_asked = controller_asked
        || machine
            .supervisor
            .as_ref()
            .is_some_and(|supervisor| supervisor.signal(libc::SIGTERM).is_ok());
    if !supervisor_asked {
        kill::signal_all(machine, libc::SIGTERM).await?;
    }
    let registry = Arc::clone(registry);
    let machine = Arc::clone(machine);
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        if registry.is_current(&machine.name, machine.instance) {
            tracing::info!(machine = %machine.name, "Did not stop in time, killing it");
            if let Err(error) = kill::signal_all(&machine, libc::SIGKILL).await {
                tracing::warn!(machine = %machine.name, %error, "Killing failed, ignoring");
            }
        }
    });
    Ok(())
}

/// The default time `Terminate` gives a machine before killing it.
pub const DEFAULT_TERMINATE_TIMEOUT: Duration = Duration::from_secs(10);
