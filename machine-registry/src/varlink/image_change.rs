//! Changes to the image pool (`Update`, `Clone`, `Remove`, `SetPoolLimit`, `CleanPool`): root's
//! (and the user's in user scope), each a job for the machine helper, which takes
//! systemd-nspawn's image locks.

use std::path::{Path, PathBuf};

use berth_interfaces::helper::{ImageChange, Job};
use berth_interfaces::image::{
    CleanPoolMode, CleanPoolReply, CleanPoolRequest, CloneRequest, RemoveRequest,
    SetPoolLimitRequest, UpdateRequest,
};
use berth_os::identity::Identity;
use berth_service_runtime::peer::Peer;
use berth_service_runtime::varlink::{Call, HandlerResult, Replier};

use super::error::image_error;
use super::image::{blocking, text};
use super::machine::{MachineService, decode};
use crate::enter::jobs;
use crate::error::Error;
use crate::images::discover::{self, Image, Kind};
use crate::images::{Pool, is_valid_name};

impl MachineService {
    pub(super) async fn update_image(&self, call: &Call) -> Result<(), Error> {
        let _operation = self.operations().start()?;
        let request: UpdateRequest = decode(call)?;
        valid_names(&request.name, request.new_name.as_deref())?;
        if let Some(limit) = request.limit {
            return Err(if limit < 0 {
                Error::invalid("limit")
            } else {
                Error::NotSupported // no quota on the file systems Berth manages
            });
        }
        let image = self.changeable(&call.peer, &request.name).await?;
        let mut path = image.path.clone();
        if let Some(new_name) = &request.new_name {
            self.absent(new_name).await?;
            let new_path = path_for(
                image.path.parent().unwrap_or(Path::new("/")),
                new_name,
                image.kind,
            );
            let settings = settings_files(self.pool(), &image)
                .into_iter()
                .map(|(dir, extension)| {
                    let from = settings_file(&dir, &image.name, extension);
                    (from, settings_file(&dir, new_name, extension))
                })
                .collect();
            let change = ImageChange::Rename {
                path: text(&image.path),
                new_path: text(&new_path),
                settings,
            };
            self.change(change, &call.peer.identity()).await?;
            path = new_path;
        }
        if let Some(read_only) = request.read_only {
            if image.kind == Kind::Block {
                return Err(Error::NotSupported);
            }
            let change = ImageChange::SetReadOnly {
                path: text(&path),
                raw: image.kind == Kind::Raw,
                read_only,
            };
            self.change(change, &call.peer.identity()).await?;
        }
        Ok(())
    }

    pub(super) async fn clone_image(
        &self,
        call: &Call,
        replier: &mut Replier<'_>,
    ) -> Result<(), Error> {
        let _operation = self.operations().start()?;
        let request: CloneRequest = decode(call)?;
        valid_names(&request.name, Some(&request.new_name))?;
        authorize(&call.peer)?;
        let image = self.image_named(&request.name).await?;
        // The host's root would be copied into the pool inside it, over and over.
        if image.kind == Kind::Block || image.host {
            return Err(Error::NotSupported);
        }
        self.absent(&request.new_name).await?;
        let pool_dir = self.pool().pool_dir.clone();
        let destination = path_for(&pool_dir, &request.new_name, image.kind);
        let beside = image.path.parent().unwrap_or(Path::new("/")).to_owned();
        let settings = ["nspawn", "vmspawn"]
            .iter()
            .map(|extension| {
                let from = settings_file(&beside, &image.name, extension);
                (from, settings_file(&pool_dir, &request.new_name, extension))
            })
            .filter(|(from, _)| Path::new(from).exists())
            .collect();
        let change = ImageChange::Clone {
            source: text(&image.path),
            destination: text(&destination),
            raw: image.kind == Kind::Raw,
            read_only: request.read_only.unwrap_or(false),
            settings,
        };
        let caller = call.peer.identity();
        tokio::select! {
            cloned = self.change(change, &caller) => cloned,
            // Dropping the job closes the helper's channel: it stops and leaves nothing.
            () = replier.closed() => Err(Error::System(std::io::Error::from_raw_os_error(libc::ECANCELED))),
        }
    }

    pub(super) async fn remove_image(&self, call: &Call) -> Result<(), Error> {
        let _operation = self.operations().start()?;
        let request: RemoveRequest = decode(call)?;
        valid_names(&request.name, None)?;
        let image = self.changeable(&call.peer, &request.name).await?;
        self.remove(&image, &call.peer.identity()).await
    }

    pub(super) async fn clean_pool(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let images = self
            .cleanable(call, replier.more())
            .await
            .map_err(image_error)?;
        let caller = call.peer.identity();
        for image in images {
            if self.in_use(&image) {
                continue;
            }
            match self.remove(&image, &caller).await {
                Ok(()) => {}
                // Locked: a container runs from it.
                Err(Error::System(e)) if e.raw_os_error() == Some(libc::EBUSY) => continue,
                Err(error) => return Err(image_error(error)),
            }
            let reply = CleanPoolReply {
                name: image.name.clone(),
                usage_exclusive: image.usage,
            };
            replier.push(&reply).await?;
        }
        Ok(())
    }

    /// The images `CleanPool` considers, once the call is checked.
    async fn cleanable(&self, call: &Call, more: bool) -> Result<Vec<Image>, Error> {
        let request: CleanPoolRequest = decode(call)?;
        if !more {
            return Err(Error::ExpectedMore);
        }
        authorize(&call.peer)?;
        let _operation = self.operations().start()?;
        let pool = self.pool().clone();
        let images = blocking(move || Ok(discover::all(&pool))).await?;
        let hidden_only = request.mode == CleanPoolMode::Hidden;
        Ok(images
            .into_iter()
            .filter(|image| !image.vendor && !image.versioned)
            .filter(|image| !hidden_only || image.name.starts_with('.'))
            .collect())
    }

    /// Removes `image`, which the caller checked may be removed (not in use).
    async fn remove(&self, image: &Image, caller: &Identity) -> Result<(), Error> {
        let settings = settings_files(self.pool(), image)
            .into_iter()
            .map(|(dir, extension)| settings_file(&dir, &image.name, extension))
            .collect();
        let change = ImageChange::Remove {
            path: text(&image.path),
            settings,
        };
        self.change(change, caller).await
    }

    /// The image `name`, which the caller may change: not the host's, not a vendor image.
    async fn changeable(&self, peer: &Peer, name: &str) -> Result<Image, Error> {
        authorize(peer)?;
        let image = self.image_named(name).await?;
        if image.vendor || image.host {
            return Err(Error::System(std::io::Error::from_raw_os_error(
                libc::EROFS,
            )));
        }
        if image.versioned {
            // Its versions are managed as a set (`NAME.v/`), not one by one here.
            return Err(Error::NotSupported);
        }
        if self.in_use(&image) {
            return Err(Error::System(std::io::Error::from_raw_os_error(
                libc::EBUSY,
            )));
        }
        Ok(image)
    }

    /// Fails with `EEXIST` when an image `name` exists.
    async fn absent(&self, name: &str) -> Result<(), Error> {
        match self.image_named(name).await {
            Err(Error::NoSuchImage) => Ok(()),
            Ok(_) => Err(Error::System(std::io::Error::from_raw_os_error(
                libc::EEXIST,
            ))),
            Err(error) => Err(error),
        }
    }

    /// Whether a registered machine runs from `image`.
    fn in_use(&self, image: &Image) -> bool {
        let path = image.path.to_string_lossy();
        self.registry()
            .snapshot()
            .iter()
            .any(|machine| machine.root_directory.as_deref() == Some(path.as_ref()))
    }

    async fn change(&self, change: ImageChange, caller: &Identity) -> Result<(), Error> {
        let (what, path) = match &change {
            ImageChange::Remove { path, .. } => ("Removing", path),
            ImageChange::Rename { path, .. } => ("Renaming", path),
            ImageChange::SetReadOnly { path, .. } => ("Changing the read-only flag of", path),
            ImageChange::Clone { source, .. } => ("Cloning", source),
        };
        tracing::info!(image = path, uid = caller.uid, "{what} an image");
        let job = Job::Image {
            change,
            lock_dir: text(&self.pool().lock_dir),
        };
        jobs::run_on_host(job, caller).await
    }

    /// `SetPoolLimit`.
    pub(super) fn set_pool_limit(&self, call: &Call) -> Result<(), Error> {
        set_pool_limit_of(call)
    }
}

fn set_pool_limit_of(call: &Call) -> Result<(), Error> {
    let request: SetPoolLimitRequest = decode(call)?;
    if request.limit < 0 {
        return Err(Error::invalid("limit"));
    }
    authorize(&call.peer)?;
    Err(Error::NotSupported) // no quota on the file systems Berth manages
}

/// Changes are for root and the service's own user.
fn authorize(peer: &Peer) -> Result<(), Error> {
    if peer.is_privileged() {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

fn valid_names(name: &str, new_name: Option<&str>) -> Result<(), Error> {
    if !is_valid_name(name) {
        return Err(Error::invalid("name"));
    }
    if new_name.is_some_and(|new| !is_valid_name(new) || new == ".host") {
        return Err(Error::invalid("newName"));
    }
    Ok(())
}

/// Where an image `name` of `kind` lives in `dir`.
fn path_for(dir: &Path, name: &str, kind: Kind) -> PathBuf {
    match kind {
        Kind::Raw => dir.join(format!("{name}.raw")),
        _ => dir.join(name),
    }
}

/// The settings file of the image `name` with `extension` in `dir`.
fn settings_file(dir: &Path, name: &str, extension: &str) -> String {
    text(&dir.join(format!("{name}.{extension}")))
}

/// The directories an image's settings files may be in, with their extension: beside the
/// image, and nspawn's (vmspawn's) settings directories.
fn settings_files(pool: &Pool, image: &Image) -> Vec<(PathBuf, &'static str)> {
    let beside = image.path.parent().unwrap_or(Path::new("/")).to_owned();
    let mut files = Vec::new();
    for extension in ["nspawn", "vmspawn"] {
        files.push((beside.clone(), extension));
        for dir in &pool.settings_dirs {
            let dir = match extension {
                "vmspawn" => dir.with_file_name("vmspawn"),
                _ => dir.clone(),
            };
            files.push((dir, extension));
        }
    }
    files
}
