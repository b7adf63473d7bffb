//! What a service implements to be served.

use super::{Call, HandlerResult, Replier};

/// The methods of a service's own interfaces.
pub trait Service: Send + Sync + 'static {
    /// The service's handlers, one per method it serves.
    type Method: Copy + Send + 'static;

    /// The handler of the qualified method name `method`, if the service has one.
    fn route(method: &str) -> Option<Self::Method>;

    /// Handles one call that passed IDL validation; replies go through `replier`.
    ///
    /// A handler that returns `Ok(())` without replying answers `{}`.
    fn handle(
        &self,
        method: Self::Method,
        call: Call,
        replier: &mut Replier<'_>,
    ) -> impl Future<Output = HandlerResult> + Send;
}
