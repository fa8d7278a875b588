//! Worker-wide statistics: Java's `connect-worker-metrics` start-up counts, the
//! `connect-worker-rebalance-metrics` of a distributed worker, and the assignment counts of
//! `connect-coordinator-metrics`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::task::Window;

/// Start-up attempts of connectors or tasks on this worker.
#[derive(Debug, Default)]
pub struct Startups {
    pub attempts: AtomicU64,
    pub successes: AtomicU64,
    pub failures: AtomicU64,
}

impl Startups {
    /// One start-up, counted as Java counts it: a success once the instance is created and
    /// started (a task: its thread runs), a failure otherwise.
    pub fn record(&self, ok: bool) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.successes.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Java's success and failure percentages (0–1 ratios, as its `Frequencies` report), 0
    /// before any attempt.
    pub fn percentages(&self) -> (f64, f64) {
        let attempts = self.attempts.load(Ordering::Relaxed);
        if attempts == 0 {
            return (0.0, 0.0);
        }
        let ok = self.successes.load(Ordering::Relaxed) as f64 / attempts as f64;
        let failed = self.failures.load(Ordering::Relaxed) as f64 / attempts as f64;
        (ok, failed)
    }
}

#[derive(Debug, Default)]
struct RebalanceState {
    started: Option<Instant>,
    completed: u64,
    epoch: i32,
    leader: String,
    protocol: String,
    last_completed: Option<Instant>,
    assigned_connectors: usize,
    assigned_tasks: usize,
}

/// What a distributed worker's group membership reports: rounds begun and completed, how long
/// they took, the generation, leader and protocol of the last.
#[derive(Debug, Default)]
pub struct Rebalances {
    state: Mutex<RebalanceState>,
    times_ms: Window,
}

/// One scrape's view of [`Rebalances`].
#[derive(Debug, Clone, PartialEq)]
pub struct RebalanceView {
    pub rebalancing: bool,
    pub completed: u64,
    pub epoch: i32,
    pub leader: String,
    pub protocol: String,
    /// -1 before the first completed round, as Java's.
    pub since_last_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub assigned_connectors: usize,
    pub assigned_tasks: usize,
}

impl Rebalances {
    /// A round begins (this member is about to send its first JoinGroup of it).
    pub fn started(&self) {
        if let Ok(mut s) = self.state.lock()
            && s.started.is_none()
        {
            s.started = Some(Instant::now());
        }
    }

    /// A round completed with this member's assignment.
    pub fn completed(&self, generation: i32, leader: &str, protocol: &str, work: (usize, usize)) {
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if let Some(start) = s.started.take() {
            self.times_ms
                .record(now.saturating_duration_since(start).as_secs_f64() * 1000.0);
        }
        s.completed += 1;
        s.epoch = generation;
        s.leader = leader.to_string();
        s.protocol = protocol.to_string();
        s.last_completed = Some(now);
        (s.assigned_connectors, s.assigned_tasks) = work;
    }

    /// `None` before the first round begins: a standalone worker exports none of these.
    pub fn view(&self) -> Option<RebalanceView> {
        let s = self.state.lock().ok()?;
        if s.started.is_none() && s.completed == 0 {
            return None;
        }
        Some(RebalanceView {
            rebalancing: s.started.is_some(),
            completed: s.completed,
            epoch: s.epoch,
            leader: s.leader.clone(),
            protocol: s.protocol.clone(),
            since_last_ms: s
                .last_completed
                .map_or(-1.0, |t| t.elapsed().as_secs_f64() * 1000.0),
            avg_ms: self.times_ms.avg(),
            max_ms: self.times_ms.max(),
            assigned_connectors: s.assigned_connectors,
            assigned_tasks: s.assigned_tasks,
        })
    }
}

/// The process's CPU seconds, resident memory bytes and thread count, from `/proc/self`
/// (Linux), for the dashboard's resource panels; `None` elsewhere.
pub fn process_stats() -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces: utime
    // and stime are the file's 14th and 15th, here the 12th and 13th.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // Linux reports them in USER_HZ, 100 on every architecture.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let rss_kib = field("VmRSS:")?;
    let threads = field("Threads:")?;
    Some(((utime + stime) / 100.0, rss_kib * 1024.0, threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_timed_from_its_start_to_its_assignment() {
        let r = Rebalances::default();
        assert_eq!(r.view(), None, "a worker outside a group reports none");
        r.started();
        let v = r.view().unwrap();
        assert!(v.rebalancing);
        assert_eq!(v.since_last_ms, -1.0);
        r.completed(7, "w1", "sessioned", (2, 5));
        let v = r.view().unwrap();
        assert!(!v.rebalancing);
        assert_eq!((v.completed, v.epoch), (1, 7));
        assert_eq!((v.assigned_connectors, v.assigned_tasks), (2, 5));
        assert!(v.avg_ms >= 0.0 && v.max_ms >= v.avg_ms, "{v:?}");
        assert!(v.since_last_ms >= 0.0);
    }

    #[test]
    fn startup_percentages_are_ratios_of_attempts() {
        let s = Startups::default();
        assert_eq!(s.percentages(), (0.0, 0.0));
        s.record(true);
        s.record(true);
        s.record(true);
        s.record(false);
        assert_eq!(s.percentages(), (0.75, 0.25));
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let (cpu, rss, threads) = process_stats().unwrap();
        assert!(cpu >= 0.0);
        assert!(rss > 1_000_000.0, "{rss}");
        assert!(threads >= 1.0);
    }
}
