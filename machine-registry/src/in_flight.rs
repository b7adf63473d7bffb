//! Registrations and removals whose files are being written outside the registry's lock.
//!
//! The registry decides under its lock (is the name free, the leader, the unit; the limits) and
//! writes the state file, the `unit:` link and the host table entry after releasing it, so two
//! machines' files are written at once. What is being written is claimed here meanwhile: a
//! change that touches a claimed name, leader or unit waits until the claim ends, so the files
//! of one name are still changed in the order the registry decided.

use std::collections::{HashMap, HashSet};

/// What changes in flight hold.
#[derive(Debug, Default)]
pub struct InFlight {
    names: HashSet<String>,
    leaders: HashSet<u32>,
    units: HashSet<String>,
    /// Registrations under way by owner UID, counted against the limits.
    registering: HashMap<u32, usize>,
}

/// One change's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub name: String,
    /// The leader of a registration (a removal claims none).
    pub leader: Option<u32>,
    /// The unit whose `unit:` link the change makes or removes.
    pub unit: Option<String>,
    /// The owner of a registration, counted against the limits until it ends.
    pub registering_uid: Option<u32>,
}

impl InFlight {
    /// Whether a change touching `name`, `leader` or `unit` must wait for one in flight.
    pub fn conflicts(&self, name: &str, leader: Option<u32>, unit: Option<&str>) -> bool {
        self.names.contains(name)
            || leader.is_some_and(|pid| self.leaders.contains(&pid))
            || unit.is_some_and(|unit| self.units.contains(unit))
    }

    /// Registrations under way.
    pub fn registrations(&self) -> usize {
        self.registering.values().sum()
    }

    /// Registrations under way by `uid`.
    pub fn registrations_of(&self, uid: u32) -> usize {
        self.registering.get(&uid).copied().unwrap_or(0)
    }

    /// Holds what `claim` names until [`InFlight::release`].
    pub fn claim(&mut self, claim: &Claim) {
        self.names.insert(claim.name.clone());
        self.leaders.extend(claim.leader);
        self.units.extend(claim.unit.clone());
        if let Some(uid) = claim.registering_uid {
            *self.registering.entry(uid).or_insert(0) += 1;
        }
    }

    /// Ends `claim`.
    pub fn release(&mut self, claim: &Claim) {
        self.names.remove(&claim.name);
        if let Some(pid) = claim.leader {
            self.leaders.remove(&pid);
        }
        if let Some(unit) = &claim.unit {
            self.units.remove(unit);
        }
        if let Some(uid) = claim.registering_uid
            && let Some(count) = self.registering.get_mut(&uid)
        {
            *count -= 1;
            if *count == 0 {
                self.registering.remove(&uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(name: &str, leader: u32, unit: Option<&str>, uid: u32) -> Claim {
        Claim {
            name: name.to_owned(),
            leader: Some(leader),
            unit: unit.map(str::to_owned),
            registering_uid: Some(uid),
        }
    }

    #[test]
    fn a_claim_holds_its_name_leader_and_unit_until_released() {
        let mut in_flight = InFlight::default();
        let a = registration("a", 10, Some("a.scope"), 1000);
        in_flight.claim(&a);
        assert!(in_flight.conflicts("a", None, None));
        assert!(in_flight.conflicts("b", Some(10), None));
        assert!(in_flight.conflicts("b", Some(11), Some("a.scope")));
        assert!(!in_flight.conflicts("b", Some(11), Some("b.scope")));
        in_flight.release(&a);
        assert!(!in_flight.conflicts("a", Some(10), Some("a.scope")));
    }

    #[test]
    fn registrations_count_per_owner_and_removals_not_at_all() {
        let mut in_flight = InFlight::default();
        let claims = [
            registration("a", 10, None, 1000),
            registration("b", 11, None, 1000),
            registration("c", 12, None, 0),
            Claim {
                name: "d".to_owned(),
                leader: None,
                unit: Some("d.scope".to_owned()),
                registering_uid: None,
            },
        ];
        for claim in &claims {
            in_flight.claim(claim);
        }
        assert_eq!(in_flight.registrations(), 3);
        assert_eq!(in_flight.registrations_of(1000), 2);
        assert!(in_flight.conflicts("x", None, Some("d.scope")));
        for claim in &claims {
            in_flight.release(claim);
        }
        assert_eq!(in_flight.registrations(), 0);
        assert_eq!(in_flight.registrations_of(1000), 0);
        assert_eq!(
            format!("{in_flight:?}"),
            format!("{:?}", InFlight::default())
        );
    }
}
