//! Any history of joins, crashes, restarts, stalls, resumes, config changes and time, read from the
//! fuzzer's bytes, played against the cooperative assignor in the simulated group (the first
//! byte picks Java's semantics or the rejoin-by-URL extension). After every round: no item held
//! by two members, nothing unconfigured running, nobody told to revoke what it does not run or
//! given what it has; once the delay has passed, everything runs and the spread is at most one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_connect_protocol::assignor::sim::{events_from_bytes, run_history};

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let events = events_from_bytes(rest);
    // Long histories add little that shorter ones do not reach, and cost quadratic time.
    run_history(&events[..events.len().min(64)], first & 1 == 1);
});
