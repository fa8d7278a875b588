//! What a member does with an assignment whose config offset differs from its own snapshot's
//! (connect-compat.md §4.6, Java's `DistributedHerder.handleRebalanceCompleted`): work starts
//! only when both agree, so no worker runs a connector with a config the leader has not seen or
//! with one it has already replaced.

use std::time::Duration;

use tributary_connect_protocol::ConnectProtocol;

/// The next step after a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Offsets agree: start the assigned work.
    Start,
    /// Read the config topic up to `offset` (within `worker.sync.timeout.ms`), then decide again.
    CatchUp { offset: i64 },
    /// The assignment failed (the leader was behind): rejoin, reading the config topic to the end
    /// first when this worker is the leader or behind the offset the leader saw.
    Rejoin { read_first: bool },
    /// This worker read past the leader's offset: ask for another rebalance, start nothing.
    RejoinAhead,
}

/// Decides the step for a completed rebalance.
pub fn after_rebalance(
    failed: bool,
    assignment_offset: i64,
    local_offset: i64,
    is_leader: bool,
) -> Step {
    if failed {
        return Step::Rejoin {
            read_first: is_leader || local_offset < assignment_offset,
        };
    }
    match local_offset.cmp(&assignment_offset) {
        std::cmp::Ordering::Equal => Step::Start,
        std::cmp::Ordering::Less => Step::CatchUp {
            offset: assignment_offset,
        },
        std::cmp::Ordering::Greater => Step::RejoinAhead,
    }
}

/// When catching up failed: how long to stay out of the group before rejoining, or `None` when
/// the retries are used up and the worker must stop everything it runs. Eager members wait
/// `worker.unsync.backoff.ms`; cooperative ones `scheduled.rebalance.max.delay.ms / 10 /
/// retries_left`, at most 5 times (Java's numbers), so a slow worker does not hold its work
/// hostage for long.
pub fn unsync_backoff(
    protocol: ConnectProtocol,
    unsync_backoff: Duration,
    max_delay: Duration,
    retries_left: u32,
) -> Option<Duration> {
    if !protocol.is_cooperative() {
        return Some(unsync_backoff);
    }
    if retries_left == 0 {
        return None;
    }
    Some(max_delay / 10 / retries_left)
}

/// Java's retry budget for cooperative members.
pub const COOPERATIVE_SYNC_RETRIES: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_starts_only_when_the_offsets_agree() {
        assert_eq!(after_rebalance(false, 10, 10, false), Step::Start);
        assert_eq!(
            after_rebalance(false, 10, 7, false),
            Step::CatchUp { offset: 10 }
        );
        assert_eq!(after_rebalance(false, 10, 12, false), Step::RejoinAhead);
    }

    #[test]
    fn a_failed_assignment_rejoins_reading_first_when_needed() {
        assert_eq!(
            after_rebalance(true, 10, 10, true),
            Step::Rejoin { read_first: true }
        );
        assert_eq!(
            after_rebalance(true, 10, 9, false),
            Step::Rejoin { read_first: true }
        );
        assert_eq!(
            after_rebalance(true, 10, 10, false),
            Step::Rejoin { read_first: false }
        );
    }

    #[test]
    fn unsynced_members_back_off_like_java() {
        let max = Duration::from_secs(300);
        let eager = Duration::from_secs(300);
        assert_eq!(
            unsync_backoff(ConnectProtocol::Eager, eager, max, 0),
            Some(eager)
        );
        assert_eq!(
            unsync_backoff(ConnectProtocol::Sessioned, eager, max, 5),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            unsync_backoff(ConnectProtocol::Compatible, eager, max, 1),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            unsync_backoff(ConnectProtocol::Sessioned, eager, max, 0),
            None
        );
    }
}
