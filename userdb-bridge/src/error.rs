//! The bridge's errors and their one mapping onto Varlink errors.

use berth_interfaces::service::VarlinkError;
use berth_interfaces::userdb::UserDatabaseError;
use berth_service_runtime::varlink::ErrorReply;

/// Why a call to the bridge fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A parameter is not allowed, out of range or not a valid name.
    #[error("Parameter {0} is invalid")]
    InvalidParameter(&'static str),
    /// The call names another service than `io.systemd.Machine`.
    #[error("The call is for another userdb service")]
    BadService,
    /// Neither an ID nor a name was given.
    #[error("Listing every record is not supported")]
    EnumerationNotSupported,
    /// No container owns the ID or name.
    #[error("No such user or group")]
    NoRecordFound,
    /// The ID and the name belong to different records.
    #[error("The ID and the name belong to different records")]
    ConflictingRecordFound,
    /// The registry's machines are not known right now (it is down, or the bridge is still
    /// reading them), so no answer can be given.
    #[error("The machine registry is not available")]
    ServiceNotAvailable,
}

/// The bridge's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for ErrorReply {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidParameter(field) => VarlinkError::invalid_parameter(field).into(),
            Error::BadService => UserDatabaseError::BadService.into(),
            Error::EnumerationNotSupported => UserDatabaseError::EnumerationNotSupported.into(),
            Error::NoRecordFound => UserDatabaseError::NoRecordFound.into(),
            Error::ConflictingRecordFound => UserDatabaseError::ConflictingRecordFound.into(),
            Error::ServiceNotAvailable => UserDatabaseError::ServiceNotAvailable.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_wire_name() {
        let name = |e: Error| ErrorReply::from(e).name;
        assert_eq!(
            name(Error::InvalidParameter("uid")),
            "org.varlink.service.InvalidParameter"
        );
        assert_eq!(
            ErrorReply::from(Error::InvalidParameter("uid")).parameters["parameter"],
            "uid"
        );
        assert_eq!(
            name(Error::ServiceNotAvailable),
            "io.systemd.UserDatabase.ServiceNotAvailable"
        );
        assert_eq!(
            name(Error::EnumerationNotSupported),
            "io.systemd.UserDatabase.EnumerationNotSupported"
        );
    }
}
