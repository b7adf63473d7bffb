//! The userdb bridge's index and record synthesis: containers come, change and go (with UID
//! and GID maps as the kernel allows them), and users and groups are looked up by ID, by name,
//! and by both.
//!
//! Input: a script, one command a line: `+ NAME [vm] [u=IN:OUT:COUNT,…] [g=…]` (a machine
//! registered or changed, as the registry's `Watch` reports it), `- NAME` (gone),
//! `? user|group [id=ID] [name=NAME]` (a lookup). Map lines the kernel would refuse
//! (overlapping, empty, past the last ID) are dropped.
//!
//! Properties: the index finds the owner of a host ID exactly when a map line of some
//! container (not one that starts at host ID 0) contains it, and finds one of those; no host
//! ID below 65536 is ever answered; a user or group found by ID has a strictly valid name,
//! which looks up the same ID again; one found by name has the ID whose name it is, and when
//! no other container maps that ID, looking the ID up gives the name back; records carry the
//! name and ID found, `nobody`'s GID and a valid GECOS field.

#![no_main]

use std::collections::BTreeMap;

use berth_interfaces::machine::MachineClass;
use berth_interfaces::registry::{IdMapping, MachineSummary};
use berth_userdb_bridge::index::Index;
use berth_userdb_bridge::lookup::{self, HOST_RANGE_END, Query};
use berth_userdb_bridge::names::{self, Kind};
use libfuzzer_sys::fuzz_target;

/// One line of a map: `INSIDE:OUTSIDE:COUNT`.
fn line(text: &str) -> Option<IdMapping> {
    let mut numbers = text.split(':').map(|n| n.parse::<u32>().ok());
    Some(IdMapping {
        inside: numbers.next()??,
        outside: numbers.next()??,
        count: numbers.next()??,
    })
}

/// A map: lines separated by commas (an empty map is written, a missing one is not).
fn map(text: &str) -> Vec<IdMapping> {
    text.split(',').filter_map(line).collect()
}

/// A map as the kernel accepts it: at most 340 lines, none empty, none running past the last
/// ID, none overlapping another inside or outside.
fn kernel_map(lines: &[IdMapping]) -> Vec<IdMapping> {
    let mut map: Vec<IdMapping> = Vec::new();
    for &line in lines.iter().take(340) {
        let end = |start: u32| u64::from(start) + u64::from(line.count);
        let overlaps = |a: u32, b: u32, len: u32| {
            u64::from(a) < u64::from(b) + u64::from(len) && u64::from(b) < end(a)
        };
        let fits = line.count > 0 && end(line.inside) <= 1 << 32 && end(line.outside) <= 1 << 32;
        if fits
            && !map.iter().any(|m| {
                overlaps(line.inside, m.inside, m.count)
                    || overlaps(line.outside, m.outside, m.count)
            })
        {
            map.push(line);
        }
    }
    map
}

/// What the index should hold: each container's maps.
type Model = BTreeMap<String, (Vec<IdMapping>, Vec<IdMapping>)>;

/// Every (container, inside ID) whose own map line contains host ID `host`.
fn owners(model: &Model, kind: Kind, host: u32) -> Vec<(&str, u32)> {
    model
        .iter()
        .flat_map(|(name, (uids, gids))| {
            let map = if kind == Kind::User { uids } else { gids };
            map.iter()
                .filter(|line| line.outside != 0)
                .filter_map(move |line| Some((name.as_str(), line.to_inside(host)?)))
        })
        .collect()
}

/// `+ NAME [vm] [u=MAP] [g=MAP]`: a machine added or changed; `- NAME`: gone.
fn apply(index: &mut Index, model: &mut Model, words: &[&str]) {
    match words {
        ["+", name, options @ ..] => {
            let vm = options.contains(&"vm");
            let map_of = |prefix: &str| {
                options
                    .iter()
                    .find_map(|o| o.strip_prefix(prefix))
                    .map(|text| kernel_map(&map(text)))
            };
            let summary = MachineSummary {
                name: (*name).to_owned(),
                class: if vm {
                    MachineClass::Vm
                } else {
                    MachineClass::Container
                },
                leader: 1,
                uid_map: map_of("u="),
                gid_map: map_of("g="),
            };
            index.upsert(&summary);
            model.remove(*name);
            let uids = summary.uid_map.unwrap_or_default();
            if !vm && !uids.is_empty() {
                model.insert(
                    (*name).to_owned(),
                    (uids, summary.gid_map.unwrap_or_default()),
                );
            }
        }
        ["-", name] => {
            index.remove(name);
            model.remove(*name);
        }
        _ => {}
    }
}

fn check_found(found: &lookup::Found, kind: Kind) {
    assert!(found.host >= HOST_RANGE_END, "a host ID was answered");
    assert!(names::is_strictly_valid(&found.name));
    assert_eq!(
        names::synthesize(kind, &found.machine, found.inside).as_deref(),
        Some(found.name.as_str())
    );
    let (gecos, name, id) = match kind {
        Kind::User => {
            let record = lookup::user_record(found.clone());
            assert_eq!(record.gid, Some(65534));
            (record.real_name, record.user_name, record.uid)
        }
        Kind::Group => {
            let record = lookup::group_record(found.clone());
            (record.description, record.group_name, record.gid)
        }
    };
    assert_eq!((name.as_str(), id), (found.name.as_str(), Some(found.host)));
    let gecos = gecos.unwrap_or_default();
    assert!(!gecos.contains(':') && !gecos.chars().any(char::is_control));
}

/// `? user|group [id=ID] [name=NAME]`: a lookup.
fn look_up(index: &Index, model: &Model, words: &[&str]) {
    let ["?", kind, options @ ..] = words else {
        return;
    };
    let kind = if *kind == "group" {
        Kind::Group
    } else {
        Kind::User
    };
    let id = options
        .iter()
        .find_map(|o| o.strip_prefix("id="))
        .and_then(|id| id.parse::<u32>().ok());
    let name = options
        .iter()
        .find_map(|o| o.strip_prefix("name="))
        .map(str::to_owned);
    check_query(index, model, kind, id, name);
    sweep(index, model, kind);
}

/// Looks up the IDs at and around both ends of every map line.
fn sweep(index: &Index, model: &Model, kind: Kind) {
    let lines = model.values().flat_map(|(uids, gids)| match kind {
        Kind::User => uids,
        Kind::Group => gids,
    });
    let ids: Vec<u32> = lines
        .flat_map(|line| {
            let last = line.outside.saturating_add(line.count - 1);
            [
                line.outside.checked_sub(1),
                Some(line.outside),
                Some(last),
                last.checked_add(1),
            ]
        })
        .flatten()
        .collect();
    for id in ids {
        check_query(index, model, kind, Some(id), None);
    }
}

fn check_query(index: &Index, model: &Model, kind: Kind, id: Option<u32>, name: Option<String>) {
    if let Some(host) = id {
        let candidates = owners(model, kind, host);
        match index.owner(kind, host) {
            Some((container, inside)) => assert!(
                candidates.contains(&(&*container.name, inside)),
                "{host} is not {inside} of {}",
                container.name
            ),
            None => assert!(candidates.is_empty(), "no owner found for {host}"),
        }
    }
    let query = Query {
        kind,
        id,
        name: name.as_deref(),
    };
    let Ok(found) = query.resolve(index) else {
        return;
    };
    check_found(&found, kind);
    if let Some(host) = id {
        assert_eq!(found.host, host);
    }
    if let Some(name) = &name {
        assert_eq!(&found.name, name);
    }
    // Round trips: by name to the same ID, and by ID back to the same name.
    let by_name = Query {
        kind,
        id: None,
        name: Some(&found.name),
    };
    match by_name.resolve(index) {
        Ok(again) => assert_eq!(again, found),
        Err(error) => panic!(
            "{} found by ID does not look up by name: {error}",
            found.name
        ),
    }
    // Two containers may map the same host IDs; the ID then names one of them.
    if owners(model, kind, found.host).len() == 1 {
        let by_id = Query {
            kind,
            id: Some(found.host),
            name: None,
        };
        match by_id.resolve(index) {
            Ok(again) => assert_eq!(again, found),
            Err(error) => panic!("{} does not look up by its ID: {error}", found.name),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let script = String::from_utf8_lossy(data);
    let mut index = Index::default();
    let mut model = Model::new();
    for line in script.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"?") {
            assert_eq!(index.len(), model.len());
            look_up(&index, &model, &words);
        } else {
            apply(&mut index, &mut model, &words);
        }
    }
});
