//! Typed async proxies over zlink connections.
//!
//! Every method returns `zlink::Result<Result<T, E>>`: the outer result is the transport (and
//! `org.varlink.service` errors, which zlink reports there), the inner one the peer's
//! interface error.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_interfaces::client::MachineProxy;
//! use berth_interfaces::machine::{ListRequest, MachineClass, RegisterRequest};
//! let mut conn = zlink::tokio::unix::connect("/run/systemd/machine/io.systemd.Machine").await?;
//! let request = RegisterRequest { name: "demo".into(), class: MachineClass::Container, ..Default::default() };
//! conn.register(&request).await??;
//! let machines = conn.list_all(&ListRequest::default()).await??;
//! # Ok(()) }
//! ```

use std::fmt::Debug;
use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use zlink::{Call, Connection, connection::Socket};

use crate::image::{
    CleanPoolReply, CleanPoolRequest, CloneRequest, ImageError, ImageInfo, ImageListRequest,
    RemoveRequest, UpdateRequest,
};
use crate::instance::{DescribeReply, InstanceError};
use crate::machine::{
    BindMountRequest, CopyRequest, KillRequest, ListRequest, MachineError, MachineInfo,
    MachineLookup, MapFromRequest, MapToReply, MappedIds, OpenReply, OpenRequest,
    OpenRootDirectoryReply, RegisterRequest,
};
use crate::registry::{ResolveHostReply, ResolveHostRequest, WatchReply};
use crate::service::{EnvironmentReply, ServiceError, SetLogLevelRequest, SystemError};

/// A method call on the wire: `{"method": …, "parameters": …}`.
#[derive(Debug, Serialize)]
struct MethodCall<'a, P> {
    method: &'a str,
    parameters: &'a P,
}

/// The empty reply `{}` of methods without outputs.
#[derive(Debug, Default, Deserialize)]
struct Empty {}

/// No parameters: serializes as `{}`.
#[derive(Debug, Serialize)]
struct NoParameters {}

/// Calls `method` once and decodes its single reply.
///
/// # Errors
/// The outer error is the transport's (or an `org.varlink.service` error); the inner one is
/// the interface error the peer replied with.
pub async fn call<S, P, R, E>(
    conn: &mut Connection<S>,
    method: &str,
    parameters: &P,
) -> zlink::Result<Result<R, E>>
where
    S: Socket,
    P: Serialize + Debug,
    R: DeserializeOwned + Debug,
    E: DeserializeOwned + Debug,
{
    let call = Call::new(MethodCall { method, parameters });
    let (reply, _fds) = conn.call_method::<_, R, E>(&call, Vec::new()).await?;
    match reply {
        Ok(reply) => reply
            .into_parameters()
            .map(Ok)
            .ok_or(zlink::Error::MissingParameters),
        Err(e) => Ok(Err(e)),
    }
}

/// Calls `method` once and decodes its single reply, with the descriptors passed along with it.
///
/// # Errors
/// As [`call`].
pub async fn call_with_fds<S, P, R, E>(
    conn: &mut Connection<S>,
    method: &str,
    parameters: &P,
) -> zlink::Result<Result<(R, Vec<OwnedFd>), E>>
where
    S: Socket,
    P: Serialize + Debug,
    R: DeserializeOwned + Debug,
    E: DeserializeOwned + Debug,
{
    let call = Call::new(MethodCall { method, parameters });
    let (reply, fds) = conn.call_method::<_, R, E>(&call, Vec::new()).await?;
    match reply {
        Ok(reply) => reply
            .into_parameters()
            .map(|parameters| Ok((parameters, fds)))
            .ok_or(zlink::Error::MissingParameters),
        Err(e) => Ok(Err(e)),
    }
}

/// Calls `method` with `more` and collects every reply until the last one.
///
/// An error reply ends the stream; it is returned instead of the replies collected so far.
///
/// # Errors
/// As [`call`].
pub async fn call_more<S, P, R, E>(
    conn: &mut Connection<S>,
    method: &str,
    parameters: &P,
) -> zlink::Result<Result<Vec<R>, E>>
where
    S: Socket,
    P: Serialize + Debug,
    R: DeserializeOwned + Debug,
    E: DeserializeOwned + Debug,
{
    let call = Call::new(MethodCall { method, parameters }).set_more(true);
    conn.send_call(&call, Vec::new()).await?;
    let mut replies = Vec::new();
    loop {
        let (reply, _fds) = conn.receive_reply::<R, E>().await?;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => return Ok(Err(e)),
        };
        let continues = reply.continues() == Some(true);
        replies.push(
            reply
                .into_parameters()
                .ok_or(zlink::Error::MissingParameters)?,
        );
        if !continues {
            return Ok(Ok(replies));
        }
    }
}

async fn call_unit<S, P, E>(
    conn: &mut Connection<S>,
    method: &str,
    parameters: &P,
) -> zlink::Result<Result<(), E>>
where
    S: Socket,
    P: Serialize + Debug,
    E: DeserializeOwned + Debug,
{
    Ok(call::<S, P, Empty, E>(conn, method, parameters)
        .await?
        .map(|_| ()))
}

/// Client side of `io.systemd.MachineImage`.
pub trait ImageProxy {
    /// `List` of one image.
    fn list_image(
        &mut self,
        request: &ImageListRequest,
    ) -> impl Future<Output = zlink::Result<Result<ImageInfo, ImageError>>>;
    /// `List` of every image (`more`).
    fn list_images(
        &mut self,
        request: &ImageListRequest,
    ) -> impl Future<Output = zlink::Result<Result<Vec<ImageInfo>, ImageError>>>;
    /// `Update`.
    fn update_image(
        &mut self,
        request: &UpdateRequest,
    ) -> impl Future<Output = zlink::Result<Result<(), ImageError>>>;
    /// `Clone`.
    fn clone_image(
        &mut self,
        request: &CloneRequest,
    ) -> impl Future<Output = zlink::Result<Result<(), ImageError>>>;
    /// `Remove`.
    fn remove_image(
        &mut self,
        request: &RemoveRequest,
    ) -> impl Future<Output = zlink::Result<Result<(), ImageError>>>;
    /// `CleanPool` (`more`).
    fn clean_pool(
        &mut self,
        request: &CleanPoolRequest,
    ) -> impl Future<Output = zlink::Result<Result<Vec<CleanPoolReply>, ImageError>>>;
}

impl<S: Socket> ImageProxy for Connection<S> {
    async fn list_image(
        &mut self,
        request: &ImageListRequest,
    ) -> zlink::Result<Result<ImageInfo, ImageError>> {
        call(self, "io.systemd.MachineImage.List", request).await
    }

    async fn list_images(
        &mut self,
        request: &ImageListRequest,
    ) -> zlink::Result<Result<Vec<ImageInfo>, ImageError>> {
        call_more(self, "io.systemd.MachineImage.List", request).await
    }

    async fn update_image(
        &mut self,
        request: &UpdateRequest,
    ) -> zlink::Result<Result<(), ImageError>> {
        call_unit(self, "io.systemd.MachineImage.Update", request).await
    }

    async fn clone_image(
        &mut self,
        request: &CloneRequest,
    ) -> zlink::Result<Result<(), ImageError>> {
        call_unit(self, "io.systemd.MachineImage.Clone", request).await
    }

    async fn remove_image(
        &mut self,
        request: &RemoveRequest,
    ) -> zlink::Result<Result<(), ImageError>> {
        call_unit(self, "io.systemd.MachineImage.Remove", request).await
    }

    async fn clean_pool(
        &mut self,
        request: &CleanPoolRequest,
    ) -> zlink::Result<Result<Vec<CleanPoolReply>, ImageError>> {
        call_more(self, "io.systemd.MachineImage.CleanPool", request).await
    }
}

/// Client side of `io.systemd.Machine`.
pub trait MachineProxy {
    /// `Register`.
    fn register(
        &mut self,
        request: &RegisterRequest,
    ) -> impl Future<Output = zlink::Result<Result<(), MachineError>>>;
    /// `Unregister`.
    fn unregister(
        &mut self,
        lookup: &MachineLookup,
    ) -> impl Future<Output = zlink::Result<Result<(), MachineError>>>;
    /// `Terminate`.
    fn terminate(
        &mut self,
        lookup: &MachineLookup,
    ) -> impl Future<Output = zlink::Result<Result<(), MachineError>>>;
    /// `Kill`.
    fn kill(
        &mut self,
        request: &KillRequest,
    ) -> impl Future<Output = zlink::Result<Result<(), MachineError>>>;
    /// `List` of one machine (by name or PID), without `more`.
    fn list(
        &mut self,
        request: &ListRequest,
    ) -> impl Future<Output = zlink::Result<Result<MachineInfo, MachineError>>>;
    /// `List` with `more`: every matching machine.
    fn list_all(
        &mut self,
        request: &ListRequest,
    ) -> impl Future<Output = zlink::Result<Result<Vec<MachineInfo>, MachineError>>>;
    /// `MapFrom`.
    fn map_from(
        &mut self,
        request: &MapFromRequest,
    ) -> impl Future<Output = zlink::Result<Result<MappedIds, MachineError>>>;
    /// `MapTo`.
    fn map_to(
        &mut self,
        ids: &MappedIds,
    ) -> impl Future<Output = zlink::Result<Result<MapToReply, MachineError>>>;
}

impl<S: Socket> MachineProxy for Connection<S> {
    async fn register(
        &mut self,
        request: &RegisterRequest,
    ) -> zlink::Result<Result<(), MachineError>> {
        call_unit(self, "io.systemd.Machine.Register", request).await
    }

    async fn unregister(
        &mut self,
        lookup: &MachineLookup,
    ) -> zlink::Result<Result<(), MachineError>> {
        call_unit(self, "io.systemd.Machine.Unregister", lookup).await
    }

    async fn terminate(
        &mut self,
        lookup: &MachineLookup,
    ) -> zlink::Result<Result<(), MachineError>> {
        call_unit(self, "io.systemd.Machine.Terminate", lookup).await
    }

    async fn kill(&mut self, request: &KillRequest) -> zlink::Result<Result<(), MachineError>> {
        call_unit(self, "io.systemd.Machine.Kill", request).await
    }

    async fn list(
        &mut self,
        request: &ListRequest,
    ) -> zlink::Result<Result<MachineInfo, MachineError>> {
        call(self, "io.systemd.Machine.List", request).await
    }

    async fn list_all(
        &mut self,
        request: &ListRequest,
    ) -> zlink::Result<Result<Vec<MachineInfo>, MachineError>> {
        call_more(self, "io.systemd.Machine.List", request).await
    }

    async fn map_from(
        &mut self,
        request: &MapFromRequest,
    ) -> zlink::Result<Result<MappedIds, MachineError>> {
        call(self, "io.systemd.Machine.MapFrom", request).await
    }

    async fn map_to(&mut self, ids: &MappedIds) -> zlink::Result<Result<MapToReply, MachineError>> {
        call(self, "io.systemd.Machine.MapTo", ids).await
    }
}

/// Client side of the `io.systemd.Machine` methods that go into a machine (those that pass a
/// descriptor return it).
pub trait EnterProxy {
    /// `OpenRootDirectory`: the machine's root directory.
    fn open_root_directory(
        &mut self,
        lookup: &MachineLookup,
    ) -> impl Future<Output = zlink::Result<Result<OwnedFd, MachineError>>>;
    /// `Open`: the pty's master and the reply.
    fn open(
        &mut self,
        request: &OpenRequest,
    ) -> impl Future<Output = zlink::Result<Result<(OpenReply, OwnedFd), MachineError>>>;
    /// `BindMount`.
    fn bind_mount(
        &mut self,
        request: &BindMountRequest,
    ) -> impl Future<Output = zlink::Result<Result<(), MachineError>>>;
    /// `CopyFrom`.
    fn copy_from(
        &mut self,
        request: &CopyRequest,
    ) -> impl Future<Output = zlink::Result<Result<(), MachineError>>>;
    /// `CopyTo`.
    fn copy_to(
        &mut self,
        request: &CopyRequest,
    ) -> impl Future<Output = zlink::Result<Result<(), MachineError>>>;
}

/// The descriptor a reply names by its index.
fn passed(fds: Vec<OwnedFd>, index: i64) -> zlink::Result<OwnedFd> {
    usize::try_from(index)
        .ok()
        .and_then(|index| fds.into_iter().nth(index))
        .ok_or(zlink::Error::MissingParameters)
}

impl<S: Socket> EnterProxy for Connection<S> {
    async fn open_root_directory(
        &mut self,
        lookup: &MachineLookup,
    ) -> zlink::Result<Result<OwnedFd, MachineError>> {
        let method = "io.systemd.Machine.OpenRootDirectory";
        match call_with_fds::<_, _, OpenRootDirectoryReply, _>(self, method, lookup).await? {
            Ok((reply, fds)) => Ok(Ok(passed(fds, reply.file_descriptor)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn open(
        &mut self,
        request: &OpenRequest,
    ) -> zlink::Result<Result<(OpenReply, OwnedFd), MachineError>> {
        match call_with_fds::<_, _, OpenReply, _>(self, "io.systemd.Machine.Open", request).await? {
            Ok((reply, fds)) => {
                let fd = passed(fds, reply.pty_file_descriptor)?;
                Ok(Ok((reply, fd)))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    async fn bind_mount(
        &mut self,
        request: &BindMountRequest,
    ) -> zlink::Result<Result<(), MachineError>> {
        call_unit(self, "io.systemd.Machine.BindMount", request).await
    }

    async fn copy_from(
        &mut self,
        request: &CopyRequest,
    ) -> zlink::Result<Result<(), MachineError>> {
        call_unit(self, "io.systemd.Machine.CopyFrom", request).await
    }

    async fn copy_to(&mut self, request: &CopyRequest) -> zlink::Result<Result<(), MachineError>> {
        call_unit(self, "io.systemd.Machine.CopyTo", request).await
    }
}

/// Client side of `io.systemd.service`.
pub trait ServiceProxy {
    /// `Ping`.
    fn ping(&mut self) -> impl Future<Output = zlink::Result<Result<(), ServiceError>>>;
    /// `SetLogLevel`.
    fn set_log_level(
        &mut self,
        level: i64,
    ) -> impl Future<Output = zlink::Result<Result<(), ServiceError>>>;
    /// `GetEnvironment`.
    fn get_environment(
        &mut self,
    ) -> impl Future<Output = zlink::Result<Result<EnvironmentReply, ServiceError>>>;
}

impl<S: Socket> ServiceProxy for Connection<S> {
    async fn ping(&mut self) -> zlink::Result<Result<(), ServiceError>> {
        call_unit(self, "io.systemd.service.Ping", &NoParameters {}).await
    }

    async fn set_log_level(&mut self, level: i64) -> zlink::Result<Result<(), ServiceError>> {
        let request = SetLogLevelRequest { level: Some(level) };
        call_unit(self, "io.systemd.service.SetLogLevel", &request).await
    }

    async fn get_environment(&mut self) -> zlink::Result<Result<EnvironmentReply, ServiceError>> {
        call(self, "io.systemd.service.GetEnvironment", &NoParameters {}).await
    }
}

/// Client side of `io.berth.Registry`.
pub trait RegistryProxy {
    /// `ResolveHost`.
    fn resolve_host(
        &mut self,
        name: &str,
    ) -> impl Future<Output = zlink::Result<Result<ResolveHostReply, MachineError>>>;
}

impl<S: Socket> RegistryProxy for Connection<S> {
    async fn resolve_host(
        &mut self,
        name: &str,
    ) -> zlink::Result<Result<ResolveHostReply, MachineError>> {
        let request = ResolveHostRequest {
            name: name.to_owned(),
        };
        call(self, "io.berth.Registry.ResolveHost", &request).await
    }
}

/// An open `io.berth.Registry.Watch` stream; owns its connection.
#[derive(Debug)]
pub struct Watch<S: Socket> {
    conn: Connection<S>,
}

impl<S: Socket> Watch<S> {
    /// Starts watching on `conn`.
    ///
    /// # Errors
    /// Sending the call failed.
    pub async fn start(mut conn: Connection<S>) -> zlink::Result<Self> {
        let call = Call::new(MethodCall {
            method: "io.berth.Registry.Watch",
            parameters: &NoParameters {},
        })
        .set_more(true);
        conn.send_call(&call, Vec::new()).await?;
        Ok(Self { conn })
    }

    /// The next event.
    ///
    /// # Errors
    /// The outer error is the transport's (the registry went away); the inner one an error
    /// reply, which ends the stream.
    ///
    /// # Cancel safety
    /// Cancel safe: zlink buffers a partly read reply.
    pub async fn next(&mut self) -> zlink::Result<Result<WatchReply, SystemError>> {
        let (reply, _fds) = self.conn.receive_reply::<WatchReply, SystemError>().await?;
        match reply {
            Ok(reply) => reply
                .into_parameters()
                .map(Ok)
                .ok_or(zlink::Error::MissingParameters),
            Err(e) => Ok(Err(e)),
        }
    }
}

/// Client side of `io.systemd.MachineInstance` (the methods without file descriptors).
pub trait InstanceProxy {
    /// `Terminate`, or another method without parameters or outputs: `PowerOff`, `Reboot`,
    /// `Pause`, `Resume`.
    fn instance_call(
        &mut self,
        method: InstanceAction,
    ) -> impl Future<Output = zlink::Result<Result<(), InstanceError>>>;
    /// `Describe`.
    fn describe(
        &mut self,
    ) -> impl Future<Output = zlink::Result<Result<DescribeReply, InstanceError>>>;
}

/// The parameterless methods of `io.systemd.MachineInstance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAction {
    /// Kill the machine now.
    Terminate,
    /// Ask for a clean shutdown.
    PowerOff,
    /// Ask for a reboot.
    Reboot,
    /// Freeze.
    Pause,
    /// Thaw.
    Resume,
}

impl InstanceAction {
    /// The qualified method name.
    pub fn method(self) -> &'static str {
        match self {
            Self::Terminate => "io.systemd.MachineInstance.Terminate",
            Self::PowerOff => "io.systemd.MachineInstance.PowerOff",
            Self::Reboot => "io.systemd.MachineInstance.Reboot",
            Self::Pause => "io.systemd.MachineInstance.Pause",
            Self::Resume => "io.systemd.MachineInstance.Resume",
        }
    }
}

impl<S: Socket> InstanceProxy for Connection<S> {
    async fn instance_call(
        &mut self,
        method: InstanceAction,
    ) -> zlink::Result<Result<(), InstanceError>> {
        call_unit(self, method.method(), &NoParameters {}).await
    }

    async fn describe(&mut self) -> zlink::Result<Result<DescribeReply, InstanceError>> {
        call(
            self,
            "io.systemd.MachineInstance.Describe",
            &NoParameters {},
        )
        .await
    }
}
