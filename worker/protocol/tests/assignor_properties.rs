//! The cooperative assignor over random histories of joins, crashes, restarts, config changes
//! and time, in the simulated group of `assignor::sim` (the fuzz target `assignor` drives the
//! same simulation from raw bytes).

use proptest::prelude::*;
use tributary_connect_protocol::assignor::sim::{Event, MAX_DELAY, Sim, run_history};

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (0u8..6).prop_map(|url| Event::Join { url }),
        2 => any::<u8>().prop_map(|pick| Event::Crash { pick }),
        2 => any::<u8>().prop_map(|pick| Event::Restart { pick }),
        1 => any::<u8>().prop_map(|pick| Event::Stall { pick }),
        1 => any::<u8>().prop_map(|pick| Event::Resume { pick }),
        2 => (0u8..6).prop_map(|tasks| Event::AddConnector { tasks }),
        1 => any::<u8>().prop_map(|pick| Event::RemoveConnector { pick }),
        1 => (any::<u8>(), 0u8..6).prop_map(|(pick, tasks)| Event::SetTasks { pick, tasks }),
        2 => (0u32..400_000).prop_map(|ms| Event::Wait { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn java_semantics_hold_over_random_histories(events in prop::collection::vec(event(), 0..40)) {
        run_history(&events, false);
    }

    #[test]
    fn the_rejoin_extension_keeps_them(events in prop::collection::vec(event(), 0..40)) {
        run_history(&events, true);
    }
}

fn group(rejoin_by_url: bool) -> (Sim, String) {
    let mut sim = Sim::new(rejoin_by_url);
    sim.join("http://w0:8083/");
    let w1 = sim.join("http://w1:8083/");
    sim.join("http://w2:8083/");
    for _ in 0..3 {
        sim.apply(&Event::AddConnector { tasks: 3 });
    }
    sim.settle();
    sim.now += 1;
    sim.settle();
    assert!(sim.unassigned().is_empty());
    (sim, w1)
}

#[test]
fn a_restarted_member_gets_its_work_back_at_once_with_the_extension() {
    let (mut sim, w1) = group(true);
    let before = sim.members[&w1].allocation.assigned_work();
    assert!(!before.is_empty());
    sim.members.remove(&w1);
    sim.assignors.remove(&w1);
    let back = sim.join("http://w1:8083/");
    let (_, delay) = sim.round();
    assert_eq!(delay, 0, "no scheduled rebalance needed");
    assert_eq!(sim.members[&back].allocation.assigned_work(), before);
    assert!(sim.unassigned().is_empty());
}

#[test]
fn without_the_extension_lost_work_waits_for_the_delay() {
    let (mut sim, w1) = group(false);
    let before = sim.members[&w1].allocation.assigned_work();
    sim.members.remove(&w1);
    sim.assignors.remove(&w1);
    let (_, delay) = sim.round();
    assert_eq!(i64::from(delay), MAX_DELAY);
    assert_eq!(sim.unassigned(), before, "the departed member's work waits");
    // It comes back (a new member id, the same URL) within the delay: Java gives it the lost
    // work only once the delay is over.
    let back = sim.join("http://w1:8083/");
    sim.now += 1000;
    let (_, delay) = sim.round();
    assert!(delay > 0);
    assert!(sim.members[&back].allocation.assigned_work().is_empty());
    sim.now += i64::from(delay);
    sim.round();
    assert_eq!(sim.members[&back].allocation.assigned_work(), before);
}
