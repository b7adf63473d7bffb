//! Handlers of `io.systemd.MachineImage`, on the registry's socket as machined serves it:
//! dispatch and `List` (the pool read off the async threads, metadata with the caller's own
//! rights). Changes are in `image_change.rs`.

use std::path::Path;

use berth_interfaces::image::{AcquireMetadata, ImageInfo, ImageListRequest};
use berth_interfaces::methods::ImageMethod;
use berth_os::identity::Identity;
use berth_service_runtime::varlink::{Call, HandlerResult, Replier};

use super::error::image_error;
use super::machine::{MachineService, decode};
use crate::error::Error;
use crate::images::discover::{self, Image};
use crate::images::{is_valid_name, metadata};

impl MachineService {
    /// Dispatches an `io.systemd.MachineImage` call.
    pub(super) async fn image(
        &self,
        method: ImageMethod,
        call: &Call,
        replier: &mut Replier<'_>,
    ) -> HandlerResult {
        match method {
            ImageMethod::List => self.list_images(call, replier).await,
            ImageMethod::Update => self.update_image(call).await.map_err(image_error),
            ImageMethod::Clone => self.clone_image(call, replier).await.map_err(image_error),
            ImageMethod::Remove => self.remove_image(call).await.map_err(image_error),
            ImageMethod::SetPoolLimit => self.set_pool_limit(call).map_err(image_error),
            ImageMethod::CleanPool => self.clean_pool(call, replier).await,
        }
    }

    async fn list_images(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let infos = self
            .image_infos(call, replier.more())
            .await
            .map_err(image_error)?;
        match infos {
            Listed::One(info) => replier.reply(&info).await,
            Listed::All(infos) => {
                for info in &infos {
                    replier.push(info).await?;
                }
                Ok(())
            }
        }
    }

    async fn image_infos(&self, call: &Call, more: bool) -> Result<Listed, Error> {
        let request: ImageListRequest = decode(call)?;
        let wanted = request.acquire_metadata.unwrap_or_default();
        let reader = call.peer.identity();
        let pool = self.pool().clone();
        if let Some(name) = request.name {
            if !is_valid_name(&name) {
                return Err(Error::invalid("name"));
            }
            let mut infos = blocking(move || {
                let image = discover::find(&pool, &name).ok_or(Error::NoSuchImage)?;
                infos_of(vec![image], wanted, &reader)
            })
            .await?;
            let info = infos.pop().ok_or(Error::NoSuchImage)?;
            return Ok(Listed::One(Box::new(info)));
        }
        if !more {
            return Err(Error::ExpectedMore);
        }
        let infos = blocking(move || infos_of(discover::all(&pool), wanted, &reader)).await?;
        Ok(Listed::All(infos))
    }

    /// The image `name`.
    pub(super) async fn image_named(&self, name: &str) -> Result<Image, Error> {
        let (pool, name) = (self.pool().clone(), name.to_owned());
        blocking(move || discover::find(&pool, &name).ok_or(Error::NoSuchImage)).await
    }
}

pub(super) fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// What `List` says of `images`: their metadata, when wanted, read on one thread with
/// `reader`'s rights (images are found with the registry's, as `List` is open to all).
fn infos_of(
    images: Vec<Image>,
    wanted: AcquireMetadata,
    reader: &Identity,
) -> Result<Vec<ImageInfo>, Error> {
    let all = || {
        images
            .into_iter()
            .map(|image| info_of(image, wanted))
            .collect()
    };
    match wanted {
        AcquireMetadata::No => all(),
        _ => metadata::as_reader(reader, all).map_err(Error::System)?,
    }
}

fn info_of(image: Image, wanted: AcquireMetadata) -> Result<ImageInfo, Error> {
    let mut info = ImageInfo {
        name: image.name.clone(),
        path: Some(text(&image.path)),
        kind: image.kind.as_str().to_owned(),
        class: "machine".to_owned(),
        read_only: image.read_only,
        creation_timestamp: image.created,
        modification_timestamp: image.modified,
        usage: image.usage,
        usage_exclusive: image.usage,
        limit: image.limit,
        limit_exclusive: image.limit,
        ..ImageInfo::default()
    };
    if wanted == AcquireMetadata::No {
        return Ok(info);
    }
    match metadata::read(&image) {
        Ok(found) => {
            info.hostname = found.hostname;
            info.machine_id = found.machine_id;
            info.machine_info = found.machine_info;
            info.os_release = found.os_release;
        }
        Err(_) if wanted == AcquireMetadata::Graceful => {}
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Err(Error::NotSupported),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::PermissionDenied);
        }
        Err(e) => return Err(Error::System(e)),
    }
    Ok(info)
}

/// What `List` answers.
enum Listed {
    /// The image asked for.
    One(Box<ImageInfo>),
    /// Every image (with `more`).
    All(Vec<ImageInfo>),
}

pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::System(std::io::Error::other(e)))?
}
