//! Wire types of `io.systemd.UserDatabase` (`idl/io.systemd.UserDatabase.varlink`), the
//! interface of userdb providers (`docs/USER_GROUP_API.md`), with the user and group records
//! as machined's userdb bridge emits them (`docs/USER_RECORD.md`, `docs/GROUP_RECORD.md`).

use serde::{Deserialize, Serialize};

use crate::errors::wire_errors;

/// Parameters of `GetUserRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecordRequest {
    /// Look up by UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Look up by user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The provider asked: the base name of its socket.
    pub service: String,
}

/// Parameters of `GetGroupRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecordRequest {
    /// Look up by GID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Look up by group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// The provider asked: the base name of its socket.
    pub service: String,
}

/// Parameters of `GetMemberships`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipsRequest {
    /// The user whose groups are asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The group whose members are asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// The provider asked: the base name of its socket.
    pub service: String,
}

/// Reply of `GetUserRecord` and `GetGroupRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordReply<R> {
    /// The record.
    pub record: R,
    /// Whether the `privileged` section was stripped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<bool>,
}

/// Reply of `GetMemberships`: one membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipReply {
    /// The member.
    pub user_name: String,
    /// The group.
    pub group_name: String,
}

/// A user record (its `regular` section), fields in the order machined writes them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// The UNIX user name.
    pub user_name: String,
    /// The UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The primary GID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The GECOS field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_name: Option<String>,
    /// The home directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_directory: Option<String>,
    /// The login shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Whether logins are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// The service that defines the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `intrinsic`, `system`, `dynamic`, `regular`, `container`, `foreign` or `reserved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
}

/// A group record (its `regular` section), fields in the order machined writes them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    /// The UNIX group name.
    pub group_name: String,
    /// The GID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The GECOS-like description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The service that defines the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// As for users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
}

wire_errors! {
    /// Errors of `io.systemd.UserDatabase`.
    pub enum UserDatabaseError in "io.systemd.UserDatabase" {
        /// No matching user or group record.
        NoRecordFound,
        /// The provider does not implement the service named in the call.
        BadService,
        /// The backing service is not operational.
        ServiceNotAvailable,
        /// A record matches the UID/GID or the name, but not both.
        ConflictingRecordFound,
        /// Listing every record is not supported.
        EnumerationNotSupported,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn records_serialize_in_machineds_field_order() {
        let record = UserRecord {
            user_name: "vu-foo-0".into(),
            uid: Some(65536),
            gid: Some(65534),
            real_name: Some("UID 0 of Container foo".into()),
            home_directory: Some("/".into()),
            shell: Some("/usr/sbin/nologin".into()),
            locked: Some(true),
            service: Some("io.systemd.Machine".into()),
            disposition: Some("container".into()),
        };
        let text = serde_json::to_string(&RecordReply {
            record,
            incomplete: None,
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"record":{"userName":"vu-foo-0","uid":65536,"gid":65534,"realName":"UID 0 of Container foo","homeDirectory":"/","shell":"/usr/sbin/nologin","locked":true,"service":"io.systemd.Machine","disposition":"container"}}"#
        );
    }

    #[test]
    fn requests_leave_out_what_is_not_asked() {
        let request = UserRecordRequest {
            uid: Some(65536),
            user_name: None,
            service: "io.systemd.Machine".into(),
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"uid": 65536, "service": "io.systemd.Machine"})
        );
    }

    #[test]
    fn errors_carry_the_interface_name() {
        let error: UserDatabaseError = serde_json::from_value(
            json!({"error": "io.systemd.UserDatabase.NoRecordFound", "parameters": {}}),
        )
        .unwrap();
        assert_eq!(error, UserDatabaseError::NoRecordFound);
        assert_eq!(
            UserDatabaseError::BadService.name(),
            "io.systemd.UserDatabase.BadService"
        );
    }
}
