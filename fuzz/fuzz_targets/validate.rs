//! Calls drawn from the IDL of each socket Berth serves: a method from the real method names
//! (now and then another one), parameters shaped by its input types (now and then not), the
//! `more` and `oneway` flags; through the real endpoint, then decoded into the typed request
//! the service decodes it into.
//!
//! Input: a byte picking the socket, a byte picking the method, then the bytes parameters and
//! flags are drawn from (the seeds are every method of every socket).
//!
//! Properties: a call drawn as the IDL says is accepted (and one with both flags is a
//! violation); answers are well-formed, and `InvalidParameter` names a parameter that was sent
//! or a required one that was not; an accepted call, sent again, is accepted unchanged; typed
//! decoding either succeeds, and the request encoded again is accepted and decodes the same,
//! or names a parameter that was sent.

#![no_main]

use arbitrary::{Result, Unstructured};
use berth_fuzz::check;
use berth_fuzz::json::{Schema, any};
use berth_fuzz::served::{Served, peer};
use berth_service_runtime::protocol::Received;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// One call, and what is known of it.
#[derive(Debug)]
struct Drawn {
    served: Served,
    method: String,
    parameters: Map<String, Value>,
    more: bool,
    oneway: bool,
    /// The method is one of the socket's, and the flags and parameters are as its IDL says.
    valid: bool,
    /// The inputs the IDL declares for the method (empty for a method not served).
    inputs: Vec<(String, bool)>,
}

fn draw(u: &mut Unstructured<'_>) -> Result<Drawn> {
    let served = Served::ALL[usize::from(u.bytes(1)?[0]) % Served::ALL.len()];
    let schema = Schema::of(served);
    let methods = schema.methods();
    let method = methods[usize::from(u.bytes(1)?[0]) % methods.len()];
    let (mut parameters, mut tampered) = schema.parameters(method, u)?;
    let mut name = method.qualified();
    if !u.ratio(31u8, 32u8)? {
        let other = Schema::of(u.arbitrary()?);
        name = u.choose(&other.methods())?.qualified();
    } else if !u.ratio(63u8, 64u8)? {
        name = u.arbitrary()?;
    }
    if !u.ratio(63u8, 64u8)? {
        parameters = any(u, 0)?.as_object().cloned().unwrap_or_default();
        tampered = true;
    }
    let more = if method.requires_more() {
        u.ratio(15u8, 16u8)?
    } else {
        !u.ratio(3u8, 4u8)?
    };
    let oneway = !u.ratio(15u8, 16u8)?;
    // What the IDL says about the method called, which may not be the one drawn for.
    let called = methods.iter().find(|m| m.qualified() == name);
    let inputs = called.map_or_else(Vec::new, |m| {
        m.method
            .inputs()
            .map(|f| {
                let optional = matches!(f.ty(), zlink_idl::Type::Optional(_));
                (f.name().as_str().to_owned(), optional)
            })
            .collect()
    });
    let same_method = name == method.qualified();
    let flags_ok = (more || !method.requires_more()) && !(more && oneway);
    Ok(Drawn {
        served,
        valid: same_method && !tampered && flags_ok,
        inputs,
        method: name,
        parameters,
        more,
        oneway,
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(drawn) = draw(&mut Unstructured::new(data)) else {
        return;
    };
    let endpoint = drawn.served.endpoint();
    let message = check::message(&drawn.method, &drawn.parameters, drawn.more, drawn.oneway);
    let received = match endpoint.receive(&message, peer()) {
        Ok(received) => received,
        Err(violation) => {
            assert!(
                drawn.more && drawn.oneway,
                "a call is a protocol violation: {violation}"
            );
            return;
        }
    };
    assert!(
        !(drawn.more && drawn.oneway),
        "'more' and 'oneway' together were accepted"
    );
    match received {
        Received::Call(call) => {
            assert_eq!(call.method(), drawn.method);
            check::call(endpoint, &call);
            check::decode(endpoint, &call);
        }
        Received::Answer(answer) => {
            let introspection = drawn.method.starts_with("org.varlink.service.");
            assert!(
                !drawn.valid || introspection,
                "a valid call was refused: {:?}",
                answer.result
            );
            if let Some((_, Some(parameter))) = check::answer(&answer) {
                let declared_required = drawn
                    .inputs
                    .iter()
                    .any(|(name, optional)| *name == parameter && !optional);
                assert!(
                    drawn.parameters.contains_key(&parameter) || declared_required,
                    "InvalidParameter names {parameter:?}, neither sent nor required"
                );
            }
        }
    }
});
