//! The image pool: `list-images`, `image-status`, `clone`, `rename`, `read-only`, `remove`,
//! `set-limit`, `clean`.

use berth_interfaces::image::{
    CleanPoolMode, CloneRequest, ImageInfo, RemoveRequest, SetPoolLimitRequest, UpdateRequest,
};
use serde_json::Value;

use crate::cli::{Output, Scope};
use crate::client::Registry;
use crate::error::{Error, Result};
use crate::format::{self, Sink, Table};

/// `list-images [--all]`: hidden images (names starting with `.`) only with `--all`.
///
/// # Errors
/// The registry cannot be reached or refused.
pub fn list(scope: &Scope, output: &Output, all: bool) -> Result<()> {
    let images: Vec<ImageInfo> = Registry::connect(scope)?
        .list_images(false)?
        .into_iter()
        .filter(|image| all || !image.name.starts_with('.'))
        .collect();
    let mut table = Table::new(&["NAME", "TYPE", "RO", "USAGE", "CREATED", "MODIFIED"]);
    for image in &images {
        table.row(vec![
            image.name.clone(),
            image.kind.clone(),
            if image.read_only { "yes" } else { "no" }.to_owned(),
            image.usage.map_or_else(|| "-".to_owned(), bytes),
            image
                .creation_timestamp
                .map_or_else(|| "-".to_owned(), format::timestamp),
            image
                .modification_timestamp
                .map_or_else(|| "-".to_owned(), format::timestamp),
        ]);
    }
    let mut sink = Sink::open(output, true);
    let mut text = table.render(!output.no_legend, sink.is_terminal());
    if !output.no_legend {
        text.push_str(&format!("\n{} images listed.\n", table.len()));
    }
    sink.write(&text)
        .map_err(Error::local("Writing the output"))
}

/// `image-status NAME…`.
///
/// # Errors
/// An image is unknown, or the registry cannot be reached.
pub fn status(scope: &Scope, output: &Output, names: &[String]) -> Result<()> {
    let mut registry = Registry::connect(scope)?;
    let text = format::blocks(names, |name| Ok(status_text(&registry.image(name)?)))?;
    Sink::open(output, true)
        .write(&text)
        .map_err(Error::local("Writing the output"))
}

fn status_text(image: &ImageInfo) -> String {
    let os = image.os_release.as_ref().and_then(|pairs| {
        pairs
            .iter()
            .find_map(|pair| pair.strip_prefix("PRETTY_NAME="))
            .map(str::to_owned)
    });
    let fields = [
        ("Path", image.path.clone()),
        ("Type", Some(image.kind.clone())),
        ("Hostname", image.hostname.clone()),
        ("Machine ID", image.machine_id.clone()),
        ("OS", os),
        (
            "RO",
            Some(
                if image.read_only {
                    "read-only"
                } else {
                    "writable"
                }
                .to_owned(),
            ),
        ),
        ("Created", image.creation_timestamp.map(format::timestamp)),
        (
            "Modified",
            image.modification_timestamp.map(format::timestamp),
        ),
        ("Usage", image.usage.map(bytes)),
        ("Limit", image.limit.map(bytes)),
    ];
    let mut text = format!("{}\n", image.name);
    for (label, value) in fields {
        if let Some(value) = value {
            text.push_str(&format!("{label:>12}: {value}\n"));
        }
    }
    text
}

/// Bytes as people read them (`1.5M`).
fn bytes(count: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{count}B"),
        _ => format!("{value:.1}{}", UNITS[unit]),
    }
}

/// `clone NAME NEW [--read-only]`.
///
/// # Errors
/// The image is unknown, or the registry refused.
pub fn clone(scope: &Scope, name: &str, new_name: &str, read_only: bool) -> Result<()> {
    let request = CloneRequest {
        name: name.to_owned(),
        new_name: new_name.to_owned(),
        read_only: Some(read_only),
        allow_interactive_authentication: None,
    };
    Registry::connect_for_copy(scope)?
        .image_call::<_, Value>(name, "Clone", &request, "Cloning")
        .map(drop)
}

/// `rename NAME NEW`, `read-only NAME [BOOL]`: `Update`.
///
/// # Errors
/// The image is unknown, or the registry refused.
pub fn update(
    scope: &Scope,
    name: &str,
    new_name: Option<&str>,
    read_only: Option<bool>,
) -> Result<()> {
    let request = UpdateRequest {
        name: name.to_owned(),
        new_name: new_name.map(str::to_owned),
        read_only,
        ..UpdateRequest::default()
    };
    Registry::connect(scope)?
        .image_call::<_, Value>(name, "Update", &request, "Changing")
        .map(drop)
}

/// `remove NAME…`.
///
/// # Errors
/// An image is unknown, or the registry refused.
pub fn remove(scope: &Scope, names: &[String]) -> Result<()> {
    let mut registry = Registry::connect_for_copy(scope)?;
    for name in names {
        let request = RemoveRequest {
            name: name.clone(),
            allow_interactive_authentication: None,
        };
        registry.image_call::<_, Value>(name, "Remove", &request, "Removing")?;
    }
    Ok(())
}

/// `set-limit [NAME] BYTES`: the pool's limit, or one image's.
///
/// # Errors
/// The registry refused (file systems without quotas: `NotSupported`).
pub fn set_limit(scope: &Scope, name: Option<&str>, limit: u64) -> Result<()> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut registry = Registry::connect(scope)?;
    match name {
        Some(name) => {
            let request = UpdateRequest {
                name: name.to_owned(),
                limit: Some(limit),
                ..UpdateRequest::default()
            };
            registry.image_call::<_, Value>(name, "Update", &request, "Limiting")
        }
        None => {
            let request = SetPoolLimitRequest {
                allow_interactive_authentication: None,
                limit,
            };
            registry.image_call::<_, Value>("pool", "SetPoolLimit", &request, "Limiting")
        }
    }
    .map(drop)
}

/// `clean [--all]`: hidden images, or every image not in use.
///
/// # Errors
/// The registry refused.
pub fn clean(scope: &Scope, output: &Output, all: bool) -> Result<()> {
    let mode = if all {
        CleanPoolMode::All
    } else {
        CleanPoolMode::Hidden
    };
    let removed = Registry::connect_for_copy(scope)?.clean_pool(mode)?;
    let mut text = String::new();
    for image in &removed {
        let freed = image
            .usage_exclusive
            .map(|b| format!(" ({} freed)", bytes(b)));
        text.push_str(&format!(
            "Removed image '{}'{}.\n",
            image.name,
            freed.unwrap_or_default()
        ));
    }
    Sink::open(output, false)
        .write(&text)
        .map_err(Error::local("Writing the output"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_machinectls() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0M");
    }
}
