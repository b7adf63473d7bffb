//! `io.systemd.UserDatabase` as machined serves it: the handlers parse and check a call, ask
//! the cache, and reply with one record or the error (the mapping lives in [`crate::error`]).

use std::sync::Arc;
use std::time::Duration;

use berth_interfaces::Methods;
use berth_interfaces::methods::UserDatabaseMethod;
use berth_interfaces::service::VarlinkError;
use berth_interfaces::userdb::{
    GroupRecordRequest, MembershipsRequest, RecordReply, UserRecordRequest,
};
use berth_service_runtime::varlink::{Call, ErrorReply, HandlerResult, Replier, Service};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::lookup::{self, Found, Query, SERVICE};
use crate::names::{self, Kind};

/// How long the first lookup that could name a container user waits for the registry's
/// listing (the registry may have to be started by its socket first).
const FIRST_LISTING: Duration = Duration::from_secs(2);

/// The userdb service of the bridge.
#[derive(Debug)]
pub struct UserDatabaseService {
    cache: Arc<Cache>,
}

impl UserDatabaseService {
    /// A service answering from `cache`.
    pub fn new(cache: Arc<Cache>) -> Self {
        Self { cache }
    }

    /// `GetUserRecord`.
    async fn get_user_record(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let request: UserRecordRequest = decode(call, &["uid", "userName", "service"])?;
        let name = request.user_name.as_deref();
        let found = self
            .lookup(Kind::User, request.uid, name, &request.service)
            .await?;
        let reply = RecordReply {
            record: lookup::user_record(found),
            incomplete: None,
        };
        replier.reply(&reply).await
    }

    /// `GetGroupRecord`.
    async fn get_group_record(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let request: GroupRecordRequest = decode(call, &["gid", "groupName", "service"])?;
        let name = request.group_name.as_deref();
        let found = self
            .lookup(Kind::Group, request.gid, name, &request.service)
            .await?;
        let reply = RecordReply {
            record: lookup::group_record(found),
            incomplete: None,
        };
        replier.reply(&reply).await
    }

    /// Checks a record lookup in machined's order (ID, name, service) and answers it.
    async fn lookup(
        &self,
        kind: Kind,
        id: Option<u32>,
        name: Option<&str>,
        service: &str,
    ) -> Result<Found> {
        let (id_field, name_field) = match kind {
            Kind::User => ("uid", "userName"),
            Kind::Group => ("gid", "groupName"),
        };
        check_id(id, id_field)?;
        check_name(name, name_field)?;
        check_service(service)?;
        self.find(&Query { kind, id, name }).await
    }

    /// `GetMemberships`: container users belong to no auxiliary groups.
    fn get_memberships(call: &Call) -> HandlerResult {
        let request: MembershipsRequest = decode(call, &["userName", "groupName", "service"])?;
        check_name(request.user_name.as_deref(), "userName")?;
        check_name(request.group_name.as_deref(), "groupName")?;
        check_service(&request.service)?;
        Err(Error::NoRecordFound.into())
    }

    /// Answers a query from the cache; a query that could be ours while the registry's
    /// machines are not known is `ServiceNotAvailable`, never a guess. The first such query
    /// starts following the registry and waits (at most [`FIRST_LISTING`]) for its listing.
    async fn find(&self, query: &Query<'_>) -> Result<Found> {
        if query.id.is_none() && query.name.is_none() {
            return Err(Error::EnumerationNotSupported);
        }
        if !query.could_match() {
            return Err(Error::NoRecordFound);
        }
        if self.cache.want() {
            self.cache.synchronized_within(FIRST_LISTING).await;
        }
        self.cache.read(|index| match index {
            Some(index) => query.resolve(index),
            None => Err(Error::ServiceNotAvailable),
        })
    }
}

impl Service for UserDatabaseService {
    type Method = UserDatabaseMethod;

    fn route(method: &str) -> Option<UserDatabaseMethod> {
        UserDatabaseMethod::from_qualified(method)
    }

    async fn handle(
        &self,
        method: UserDatabaseMethod,
        call: Call,
        replier: &mut Replier<'_>,
    ) -> HandlerResult {
        match method {
            UserDatabaseMethod::GetUserRecord => self.get_user_record(&call, replier).await,
            UserDatabaseMethod::GetGroupRecord => self.get_group_record(&call, replier).await,
            UserDatabaseMethod::GetMemberships => Self::get_memberships(&call),
        }
    }
}

/// Decodes the parameters, refusing fields machined's dispatch tables do not list (the
/// optional filters of newer IDLs: `fuzzyNames`, `dispositionMask`, `uidMin`, …), which is how
/// a provider says it does not filter.
fn decode<T: serde::de::DeserializeOwned>(
    call: &Call,
    fields: &[&'static str],
) -> std::result::Result<T, ErrorReply> {
    if let Some(unknown) = call
        .parameters()
        .keys()
        .find(|key| !fields.contains(&key.as_str()))
    {
        return Err(VarlinkError::invalid_parameter(unknown.as_str()).into());
    }
    call.decode()
}

fn check_id(id: Option<u32>, field: &'static str) -> Result<()> {
    match id {
        Some(id) if !names::is_valid_id(id) => Err(Error::InvalidParameter(field)),
        _ => Ok(()),
    }
}

fn check_name(name: Option<&str>, field: &'static str) -> Result<()> {
    match name {
        Some(name) if !names::is_relaxed_valid(name) => Err(Error::InvalidParameter(field)),
        _ => Ok(()),
    }
}

fn check_service(service: &str) -> Result<()> {
    if service == SERVICE {
        Ok(())
    } else {
        Err(Error::BadService)
    }
}
