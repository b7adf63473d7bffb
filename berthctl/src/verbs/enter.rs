//! Into a machine: `shell`, `login` (a terminal relayed to the machine's pty), `copy-to`,
//! `copy-from`, `bind`.

use std::path::{Component, Path, PathBuf};

use berth_interfaces::machine::{
    BindMountRequest, CopyRequest, MachineLookup, OpenMode, OpenRequest,
};

use crate::cli::Scope;
use crate::client::Registry;
use crate::error::{Error, Result};
use crate::terminal;

/// `shell [USER@]NAME [PATH [ARGUMENTS…]]`.
///
/// # Errors
/// The machine is unknown, the call failed, or the terminal could not be relayed.
pub fn shell(
    scope: &Scope,
    name: &str,
    uid: Option<&str>,
    environment: &[String],
    command: &[String],
) -> Result<()> {
    let (user, name) = match name.split_once('@') {
        Some((user, name)) => (Some(user), name),
        None => (uid, name),
    };
    let request = OpenRequest {
        lookup: MachineLookup::by_name(name),
        mode: OpenMode::Shell,
        user: user.map(str::to_owned),
        path: command.first().cloned(),
        args: (!command.is_empty()).then(|| command.to_vec()),
        environment: Some(with_term(environment)),
    };
    open(scope, name, &request)
}

/// `login NAME`.
///
/// # Errors
/// As [`shell`].
pub fn login(scope: &Scope, name: &str) -> Result<()> {
    let request = OpenRequest {
        lookup: MachineLookup::by_name(name),
        mode: OpenMode::Login,
        user: None,
        path: None,
        args: None,
        environment: None,
    };
    open(scope, name, &request)
}

fn open(scope: &Scope, name: &str, request: &OpenRequest) -> Result<()> {
    let (_, master) = Registry::connect(scope)?.open(request)?;
    terminal::relay(master, name).map_err(Error::local("Relaying the terminal"))
}

/// Our `TERM` goes along, unless the caller sets one.
fn with_term(environment: &[String]) -> Vec<String> {
    let mut all = environment.to_vec();
    let has_term = all.iter().any(|e| e.starts_with("TERM="));
    match std::env::var("TERM") {
        Ok(term) if !has_term && !term.is_empty() => all.push(format!("TERM={term}")),
        _ => {}
    }
    all
}

/// `copy-to NAME SOURCE [DESTINATION]`.
///
/// # Errors
/// The machine is unknown, or the copy failed.
pub fn copy_to(
    scope: &Scope,
    name: &str,
    source: &Path,
    destination: Option<&str>,
    force: bool,
) -> Result<()> {
    let source = host_path(source)?;
    let request = CopyRequest {
        lookup: MachineLookup::by_name(name),
        destination: Some(destination.unwrap_or(&source).to_owned()),
        source,
        replace: Some(force),
    };
    Registry::connect_for_copy(scope)?.copy(true, &request)
}

/// `copy-from NAME SOURCE [DESTINATION]`.
///
/// # Errors
/// As [`copy_to`].
pub fn copy_from(
    scope: &Scope,
    name: &str,
    source: &str,
    destination: Option<&Path>,
    force: bool,
) -> Result<()> {
    let destination = match destination {
        Some(path) => host_path(path)?,
        None => source.to_owned(),
    };
    let request = CopyRequest {
        lookup: MachineLookup::by_name(name),
        source: source.to_owned(),
        destination: Some(destination),
        replace: Some(force),
    };
    Registry::connect_for_copy(scope)?.copy(false, &request)
}

/// `bind NAME SOURCE [DESTINATION]`.
///
/// # Errors
/// The machine is unknown, or mounting failed.
pub fn bind(
    scope: &Scope,
    name: &str,
    source: &Path,
    destination: Option<&str>,
    read_only: bool,
    mkdir: bool,
) -> Result<()> {
    let source = host_path(source)?;
    let request = BindMountRequest {
        lookup: MachineLookup::by_name(name),
        destination: Some(destination.unwrap_or(&source).to_owned()),
        source,
        read_only: Some(read_only),
        mkdir: Some(mkdir),
    };
    Registry::connect(scope)?.bind_mount(&request)
}

/// A host path made absolute (against the working directory) and normalized as the registry
/// wants it: no `.` components, no repeated or trailing slashes. `..` stays (the registry
/// refuses it: resolving it here could follow a symlink the caller did not mean).
fn host_path(path: &Path) -> Result<String> {
    let absolute = std::path::absolute(path).map_err(Error::local("Resolving the host path"))?;
    let normalized: PathBuf = absolute
        .components()
        .filter(|part| *part != Component::CurDir)
        .collect();
    normalized.into_os_string().into_string().map_err(|_| {
        Error::local("Resolving the host path")(std::io::ErrorKind::InvalidData.into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_are_absolute_and_normalized() {
        assert_eq!(host_path(Path::new("/a//b/./c/")).unwrap(), "/a/b/c");
        let relative = host_path(Path::new("x/y")).unwrap();
        assert!(
            relative.starts_with('/') && relative.ends_with("/x/y"),
            "{relative}"
        );
    }
}
