//! The incremental cooperative assignor (KIP-415; `connect.protocol` `compatible` and
//! `sessioned`): members keep running what they have, the leader hands out only what is new and
//! revokes only what must move, and work of a departed member waits up to
//! `scheduled.rebalance.max.delay.ms` for it to come back before going to others.
//!
//! The steps follow Java's `IncrementalCooperativeAssignor` (connect-compat.md §4.8), with two
//! differences, both documented in docs/compatibility.md:
//! - **Rejoin by URL** (Tributary's extension): the leader remembers the advertised URL of the
//!   member that last ran each item; lost work whose URL belongs to exactly one present member goes
//!   straight back to it instead of waiting out the delay (a pod restarted by Kubernetes comes
//!   back with the same DNS name).
//! - Work a member runs that is no longer configured is revoked even when the leader has no
//!   previous assignment to compare with (Java notices it one round later).

use std::collections::{BTreeMap, BTreeSet};

use super::{Leader, Member, Round, Snapshot, config_mismatch, member_ids};
use crate::assignment::{Assignment, NO_ERROR, TaskId, Work};

/// The leader's memory between rounds.
#[derive(Debug, Clone)]
pub struct CooperativeAssignor {
    max_delay_ms: i64,
    rejoin_by_url: bool,
    previous_assignment: Work,
    previous_revocation: Work,
    revoked_in_previous: bool,
    candidate_workers: BTreeSet<String>,
    /// When the delayed reassignment of lost work is due (ms since the epoch); 0 for none.
    scheduled_rebalance: i64,
    delay: i64,
    previous_generation: i32,
    previous_members: BTreeSet<String>,
    successive_revoking: u32,
    /// The advertised URL of the member that last ran each configured item.
    owner_urls: OwnerUrls,
}

#[derive(Debug, Clone, Default)]
struct OwnerUrls {
    connectors: BTreeMap<String, String>,
    tasks: BTreeMap<TaskId, String>,
}

/// One round's inputs besides the members.
#[derive(Debug, Clone, Copy)]
pub struct RoundInput<'a> {
    /// Milliseconds since the epoch.
    pub now_ms: i64,
    /// The generation of this join.
    pub generation: i32,
    /// The generation of the leader's last completed join (-1 for none): when it is not the one
    /// this assignor last assigned in, a round failed or the leader changed, and the previous
    /// assignment is not trusted.
    pub last_completed_generation: i32,
    pub leader: &'a Leader,
    pub snapshot: &'a Snapshot,
    pub members: &'a [Member],
    /// 1 (`compatible`) or 2 (`sessioned`).
    pub version: i16,
}

impl CooperativeAssignor {
    /// `max_delay_ms` is `scheduled.rebalance.max.delay.ms`; `rejoin_by_url` turns Tributary's
    /// extension on.
    pub fn new(max_delay_ms: i64, rejoin_by_url: bool) -> Self {
        Self {
            max_delay_ms: max_delay_ms.max(0),
            rejoin_by_url,
            previous_assignment: Work::new(),
            previous_revocation: Work::new(),
            revoked_in_previous: false,
            candidate_workers: BTreeSet::new(),
            scheduled_rebalance: 0,
            delay: 0,
            previous_generation: -1,
            previous_members: BTreeSet::new(),
            successive_revoking: 0,
            owner_urls: OwnerUrls::default(),
        }
    }

    /// The scheduled reassignment of lost work, if one is pending (ms since the epoch).
    pub fn scheduled_rebalance(&self) -> Option<i64> {
        (self.scheduled_rebalance > 0).then_some(self.scheduled_rebalance)
    }

    fn reset_delay(&mut self) {
        self.candidate_workers.clear();
        self.scheduled_rebalance = 0;
        self.delay = 0;
    }

    pub fn assign(&mut self, input: RoundInput<'_>) -> Round {
        let RoundInput {
            now_ms: now,
            generation,
            last_completed_generation,
            leader,
            snapshot,
            members,
            version,
        } = input;
        if let Some(round) = config_mismatch(leader, snapshot, members, version) {
            return round;
        }
        // 1. A failed round or a new leader: the previous assignment may be stale.
        if self.previous_generation != last_completed_generation {
            self.previous_assignment = Work::new();
        }
        // 2.
        let configured = snapshot.configured();
        let ids = member_ids(members);
        let member_work: BTreeMap<String, Work> = members
            .iter()
            .map(|m| (m.id.clone(), m.allocation.clone()))
            .collect();
        let urls: BTreeMap<&str, &str> = members
            .iter()
            .map(|m| (m.id.as_str(), m.url.as_str()))
            .collect();
        let active = Work::union(member_work.values());
        // 3. Revocations that were not carried out: trust what the members say they run.
        if !self.previous_revocation.is_empty() {
            if self.previous_revocation.overlaps(&active) {
                self.previous_assignment = active.clone();
            }
            self.previous_revocation = Work::new();
        }
        // 4.
        let mut known = self.previous_assignment.clone();
        known.add(&active);
        let deleted = known.minus(&configured);
        let duplicated = duplicated(&member_work);
        let mut lost = self.previous_assignment.minus(&active).minus(&deleted);
        let created = configured.minus(&self.previous_assignment).minus(&active);
        // 5.
        let mut stop = deleted.clone();
        stop.add(&duplicated);
        let current: BTreeMap<String, Work> = member_work
            .iter()
            .map(|(id, w)| (id.clone(), w.minus(&deleted)))
            .collect();
        let mut to_revoke: BTreeMap<String, Work> = member_work
            .iter()
            .map(|(id, w)| (id.clone(), w.intersect(&stop)))
            .collect();
        let mut next: BTreeMap<String, Work> = member_work
            .iter()
            .map(|(id, w)| (id.clone(), w.minus(&stop)))
            .collect();
        // What members keep running; load balancing (7) only revokes from this, not from lost
        // work handed out below, which the members do not run yet.
        let kept = next.clone();
        // 6. Lost work: back to its owner's URL (extension), now, or after the delay.
        if self.rejoin_by_url {
            self.return_to_owners(&mut lost, &mut next, members);
        }
        let lost_to_reassign = self.handle_lost(now, &lost, &ids, &mut next);
        // 7. Load-balancing revocations, only when no delay is pending.
        if self.delay == 0 {
            let balance = if kept.values().all(Work::is_empty) || configured.is_empty() {
                BTreeMap::new()
            } else {
                balance_revocations(&configured, &kept)
            };
            let any = balance.values().any(|w| !w.is_empty());
            let mut revoke_now = false;
            if self.revoked_in_previous && any {
                self.successive_revoking += 1;
                self.delay = revoking_backoff(self.successive_revoking, self.max_delay_ms);
                if self.delay != 0 {
                    self.scheduled_rebalance = now + self.delay;
                } else {
                    revoke_now = true;
                }
            } else if any {
                revoke_now = true;
            } else if self.revoked_in_previous {
                self.revoked_in_previous = false;
                self.successive_revoking = 0;
            }
            if revoke_now {
                for (id, w) in &balance {
                    if let Some(r) = to_revoke.get_mut(id) {
                        r.add(w);
                    }
                    if let Some(n) = next.get_mut(id) {
                        n.remove(w);
                    }
                }
                self.revoked_in_previous = true;
            }
        } else {
            self.revoked_in_previous = false;
        }
        // 8. New and reassigned work to the least loaded members.
        let mut to_assign = created;
        to_assign.add(&lost_to_reassign);
        assign_least_loaded(&mut next, to_assign.connectors.iter(), |w| {
            &mut w.connectors
        });
        assign_least_loaded(&mut next, to_assign.tasks.iter(), |w| &mut w.tasks);
        // 9.
        let delay_ms = i32::try_from(self.delay).unwrap_or(i32::MAX);
        let assignments = members
            .iter()
            .map(|m| {
                let none = Work::new();
                let n = next.get(&m.id).unwrap_or(&none);
                let c = current.get(&m.id).unwrap_or(&none);
                let r = to_revoke.get(&m.id).unwrap_or(&none);
                (
                    m.id.clone(),
                    Assignment {
                        version,
                        error: NO_ERROR,
                        leader: leader.id.clone(),
                        leader_url: leader.url.clone(),
                        config_offset: snapshot.offset,
                        assigned: Some(n.minus(c).to_wire()),
                        revoked: Some(r.to_wire()),
                        delay_ms,
                    },
                )
            })
            .collect();
        let all_revoked = Work::union(to_revoke.values());
        let mut previous = Work::union(next.values()).minus(&all_revoked);
        previous.add(&lost);
        self.previous_assignment = previous;
        self.previous_revocation.add(&all_revoked);
        self.previous_generation = generation;
        self.previous_members = ids;
        for (id, w) in &next {
            if let Some(url) = urls.get(id.as_str()) {
                for c in &w.connectors {
                    self.owner_urls
                        .connectors
                        .insert(c.clone(), (*url).to_string());
                }
                for t in &w.tasks {
                    self.owner_urls.tasks.insert(t.clone(), (*url).to_string());
                }
            }
        }
        self.owner_urls
            .connectors
            .retain(|c, _| configured.connectors.contains(c));
        self.owner_urls
            .tasks
            .retain(|t, _| configured.tasks.contains(t));
        Round {
            assignments,
            owners: next,
        }
    }

    /// Tributary's extension: lost items whose last owner's URL belongs to exactly one present
    /// member go back to that member now; they are taken out of `lost`.
    fn return_to_owners(
        &self,
        lost: &mut Work,
        next: &mut BTreeMap<String, Work>,
        members: &[Member],
    ) {
        let mut by_url: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for m in members {
            by_url
                .entry(m.url.as_str())
                .or_default()
                .push(m.id.as_str());
        }
        let owner = |url: Option<&String>| -> Option<String> {
            match by_url.get(url?.as_str())?.as_slice() {
                [only] => Some((*only).to_string()),
                _ => None,
            }
        };
        let mut returned = Work::new();
        for c in &lost.connectors {
            if let Some(id) = owner(self.owner_urls.connectors.get(c))
                && let Some(w) = next.get_mut(&id)
            {
                w.connectors.insert(c.clone());
                returned.connectors.insert(c.clone());
            }
        }
        for t in &lost.tasks {
            if let Some(id) = owner(self.owner_urls.tasks.get(t))
                && let Some(w) = next.get_mut(&id)
            {
                w.tasks.insert(t.clone());
                returned.tasks.insert(t.clone());
            }
        }
        lost.remove(&returned);
    }

    /// Java's `handleLostAssignments`: returns what goes to the least loaded members this round;
    /// may hand lost work straight to members that came back empty, or schedule a delay.
    fn handle_lost(
        &mut self,
        now: i64,
        lost: &Work,
        ids: &BTreeSet<String>,
        next: &mut BTreeMap<String, Work>,
    ) -> Work {
        if lost.is_empty() && !self.revoked_in_previous {
            self.reset_delay();
            return Work::new();
        }
        if self.scheduled_rebalance <= 0 && ids.is_superset(&self.previous_members) {
            // Nobody left: the work went missing in a failed round; reassign it as new.
            return lost.clone();
        }
        if self.max_delay_ms == 0 {
            return lost.clone();
        }
        if self.scheduled_rebalance > 0 && now >= self.scheduled_rebalance {
            let candidates: Vec<String> = self
                .candidate_workers
                .iter()
                .filter(|c| ids.contains(*c))
                .cloned()
                .collect();
            let mut out = Work::new();
            if candidates.is_empty() {
                out = lost.clone();
            } else {
                let mut rotation = candidates.iter().cycle();
                for c in &lost.connectors {
                    if let Some(id) = rotation.next()
                        && let Some(w) = next.get_mut(id)
                    {
                        w.connectors.insert(c.clone());
                    }
                }
                for t in &lost.tasks {
                    if let Some(id) = rotation.next()
                        && let Some(w) = next.get_mut(id)
                    {
                        w.tasks.insert(t.clone());
                    }
                }
            }
            self.reset_delay();
            self.revoked_in_previous = false;
            return out;
        }
        // Wait for the departed member: remember who came back empty, send everyone the delay.
        for (id, w) in next.iter() {
            if w.is_empty() {
                self.candidate_workers.insert(id.clone());
            }
        }
        self.delay = if now < self.scheduled_rebalance {
            (self.scheduled_rebalance - now).min(self.max_delay_ms)
        } else {
            self.max_delay_ms
        };
        self.scheduled_rebalance = now + self.delay;
        Work::new()
    }
}

/// Items held by more than one member.
fn duplicated(work: &BTreeMap<String, Work>) -> Work {
    let mut seen = Work::new();
    let mut dup = Work::new();
    for w in work.values() {
        for c in &w.connectors {
            if !seen.connectors.insert(c.clone()) {
                dup.connectors.insert(c.clone());
            }
        }
        for t in &w.tasks {
            if !seen.tasks.insert(t.clone()) {
                dup.tasks.insert(t.clone());
            }
        }
    }
    dup
}

/// What each member must give up so that connectors and tasks (separately) end up spread at most
/// one apart: with `total` configured items over `n` members, `total % n` members may keep one
/// more than `total / n`.
fn balance_revocations(configured: &Work, next: &BTreeMap<String, Work>) -> BTreeMap<String, Work> {
    let mut out: BTreeMap<String, Work> = next.keys().map(|id| (id.clone(), Work::new())).collect();
    let n = next.len();
    if n == 0 {
        return out;
    }
    let connectors = excess(
        configured.connectors.len(),
        next.iter().map(|(id, w)| (id, w.connectors.iter())),
    );
    for (id, items) in connectors {
        if let Some(w) = out.get_mut(id) {
            w.connectors.extend(items.into_iter().cloned());
        }
    }
    let tasks = excess(
        configured.tasks.len(),
        next.iter().map(|(id, w)| (id, w.tasks.iter())),
    );
    for (id, items) in tasks {
        if let Some(w) = out.get_mut(id) {
            w.tasks.extend(items.into_iter().cloned());
        }
    }
    out
}

fn excess<'a, T: 'a, I: ExactSizeIterator<Item = &'a T>>(
    total: usize,
    loads: impl Iterator<Item = (&'a String, I)> + Clone,
) -> Vec<(&'a String, Vec<&'a T>)> {
    let n = loads.clone().count();
    if n == 0 {
        return Vec::new();
    }
    let (min, extra) = (total / n, total % n);
    let sizes: Vec<usize> = loads.clone().map(|(_, i)| i.len()).collect();
    let balanced = sizes.iter().all(|&s| s == min || s == min + 1)
        && sizes.iter().filter(|&&s| s == min + 1).count() == extra;
    if balanced {
        return Vec::new();
    }
    let mut allowed_extra = extra;
    let mut out = Vec::new();
    for (id, items) in loads {
        let load = items.len();
        if load <= min {
            continue;
        }
        let keep = if allowed_extra > 0 {
            allowed_extra -= 1;
            min + 1
        } else {
            min
        };
        if load > keep {
            out.push((id, items.take(load - keep).collect()));
        }
    }
    out
}

/// Java's assignment of new items: members sorted by (load, id); each round gives one item to
/// every member of the lowest tier, widening the tier as loads even out.
fn assign_least_loaded<'a, T: Ord + Clone + 'a>(
    next: &mut BTreeMap<String, Work>,
    items: impl Iterator<Item = &'a T>,
    field: impl Fn(&mut Work) -> &mut BTreeSet<T>,
) {
    if next.is_empty() {
        return;
    }
    let mut loads: Vec<(usize, String)> = next
        .iter_mut()
        .map(|(id, w)| (field(w).len(), id.clone()))
        .collect();
    loads.sort();
    let mut items = items.peekable();
    while items.peek().is_some() {
        let first = loads[0].0;
        let upto = loads
            .iter()
            .position(|(l, _)| *l > first)
            .unwrap_or(loads.len());
        for (load, id) in loads.iter_mut().take(upto) {
            let Some(item) = items.next() else {
                break;
            };
            if let Some(w) = next.get_mut(id.as_str()) {
                field(w).insert(item.clone());
            }
            *load += 1;
        }
    }
}

/// The delay before another load-balancing revocation after `n` successive ones: Java's
/// `ExponentialBackoff(1, 40, max, 0)` (40 ms, 1.6 s, 64 s, … up to the max); none when the max
/// delay is 0.
fn revoking_backoff(n: u32, max_delay_ms: i64) -> i64 {
    if max_delay_ms <= 1 {
        return 0;
    }
    let exp_max = (max_delay_ms as f64).ln() / 40f64.ln();
    let term = 40f64.powf(f64::from(n).min(exp_max));
    (term as i64).min(max_delay_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_forty_up_to_the_max() {
        assert_eq!(revoking_backoff(1, 300_000), 40);
        assert_eq!(revoking_backoff(2, 300_000), 1600);
        assert_eq!(revoking_backoff(3, 300_000), 64_000);
        assert!((299_000..=300_000).contains(&revoking_backoff(9, 300_000)));
        assert_eq!(revoking_backoff(1, 0), 0);
    }

    #[test]
    fn least_loaded_widens_the_tier() {
        let mut next: BTreeMap<String, Work> = BTreeMap::new();
        next.insert("a".into(), Work::new());
        next.insert("b".into(), Work::new());
        next.get_mut("b").map(|w| w.connectors.insert("z".into()));
        let items: Vec<String> = ["c1", "c2", "c3"].map(String::from).to_vec();
        assign_least_loaded(&mut next, items.iter(), |w| &mut w.connectors);
        // a (0) takes c1; then a and b are both at 1: c2 → a, c3 → b.
        assert_eq!(next["a"].connectors.len(), 2);
        assert_eq!(next["b"].connectors.len(), 2);
        assert!(next["b"].connectors.contains("c3"));
    }
}
