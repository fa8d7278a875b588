//! Per-task statistics, kept as Java keeps its `connector-task-metrics`, `source-task-metrics`,
//! `sink-task-metrics` and `task-error-metrics` groups: totals, gauges, and averages and maxima
//! over the last one to two 30 s windows (Java's `metrics.sample.window.ms` and
//! `metrics.num.samples` defaults), read at scrape time.
//!
//! Task loops update them with relaxed atomics (no lock on the record path but the windows',
//! taken once per batch). A task's statistics live as long as the task: the guard the loop
//! holds removes them when the task ends, as Java removes a task's metric groups.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Java's sample window.
const SAMPLE: Duration = Duration::from_secs(30);
/// Java's number of samples: a value counts for one to two windows.
const SAMPLES: u32 = 2;

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    start: Option<Instant>,
    sum: f64,
    count: u64,
    max: f64,
}

/// Java's sampled `Avg`, `Max` and `Rate` over the recent windows.
#[derive(Debug, Default)]
pub struct Window {
    samples: Mutex<([Sample; SAMPLES as usize], usize)>,
}

impl Window {
    pub fn record(&self, value: f64) {
        self.record_at(value, Instant::now());
    }

    fn record_at(&self, value: f64, now: Instant) {
        let Ok(mut guard) = self.samples.lock() else {
            return;
        };
        let (samples, current) = &mut *guard;
        let fresh = samples[*current]
            .start
            .is_some_and(|s| now.saturating_duration_since(s) < SAMPLE);
        if !fresh {
            *current = (*current + 1) % samples.len();
            samples[*current] = Sample {
                start: Some(now),
                ..Sample::default()
            };
        }
        let s = &mut samples[*current];
        s.sum += value;
        s.max = if s.count == 0 {
            value
        } else {
            s.max.max(value)
        };
        s.count += 1;
    }

    fn live(&self, now: Instant) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|g| {
                g.0.iter()
                    .filter(|s| {
                        s.start
                            .is_some_and(|st| now.saturating_duration_since(st) < SAMPLE * SAMPLES)
                    })
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The average of the recorded values, NaN when there are none (as Java's).
    pub fn avg(&self) -> f64 {
        let live = self.live(Instant::now());
        let count: u64 = live.iter().map(|s| s.count).sum();
        if count == 0 {
            return f64::NAN;
        }
        live.iter().map(|s| s.sum).sum::<f64>() / count as f64
    }

    /// The largest recorded value, NaN when there is none.
    pub fn max(&self) -> f64 {
        self.live(Instant::now())
            .iter()
            .filter(|s| s.count > 0)
            .map(|s| s.max)
            .fold(f64::NAN, f64::max)
    }

    /// The recorded values' sum per second over the windows (Java's `Rate`: the elapsed time is
    /// from the oldest live window's start, at least one full window less one sample).
    pub fn rate(&self) -> f64 {
        self.rate_at(Instant::now())
    }

    fn rate_at(&self, now: Instant) -> f64 {
        let live = self.live(now);
        let Some(oldest) = live.iter().filter_map(|s| s.start).min() else {
            return 0.0;
        };
        let elapsed = now
            .saturating_duration_since(oldest)
            .max(SAMPLE * (SAMPLES - 1))
            .as_secs_f64();
        live.iter().map(|s| s.sum).sum::<f64>() / elapsed
    }
}

/// Which task loop a task runs, and so which of the groups it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Source,
    Sink,
}

/// One task's statistics.
#[derive(Debug)]
pub struct TaskStats {
    pub kind: TaskKind,
    // connector-task-metrics
    pub batch_size: Window,
    pub offset_commit_time_ms: Window,
    // source-task-metrics
    pub source_record_poll: Window,
    pub source_record_poll_total: AtomicU64,
    pub source_record_write: Window,
    pub source_record_write_total: AtomicU64,
    pub source_record_active: AtomicI64,
    pub poll_batch_time_ms: Window,
    // sink-task-metrics
    pub sink_record_read: Window,
    pub sink_record_read_total: AtomicU64,
    pub sink_record_send: Window,
    pub sink_record_send_total: AtomicU64,
    pub sink_record_active: AtomicI64,
    pub partition_count: AtomicI64,
    pub offset_commit_completion_total: AtomicU64,
    pub offset_commit_skip_total: AtomicU64,
    pub offset_commit_seq_no: AtomicI64,
    pub put_batch_time_ms: Window,
    // task-error-metrics
    pub record_errors: AtomicU64,
    pub record_failures: AtomicU64,
    pub records_skipped: AtomicU64,
    pub retries: AtomicU64,
    pub errors_logged: AtomicU64,
    pub dlq_produce_requests: AtomicU64,
    pub dlq_produce_failures: AtomicU64,
    /// Milliseconds since the epoch of the last record error, 0 before any.
    pub last_error_timestamp: AtomicI64,
}

impl TaskStats {
    fn new(kind: TaskKind) -> Self {
        Self {
            kind,
            batch_size: Window::default(),
            offset_commit_time_ms: Window::default(),
            source_record_poll: Window::default(),
            source_record_poll_total: AtomicU64::new(0),
            source_record_write: Window::default(),
            source_record_write_total: AtomicU64::new(0),
            source_record_active: AtomicI64::new(0),
            poll_batch_time_ms: Window::default(),
            sink_record_read: Window::default(),
            sink_record_read_total: AtomicU64::new(0),
            sink_record_send: Window::default(),
            sink_record_send_total: AtomicU64::new(0),
            sink_record_active: AtomicI64::new(0),
            partition_count: AtomicI64::new(0),
            offset_commit_completion_total: AtomicU64::new(0),
            offset_commit_skip_total: AtomicU64::new(0),
            offset_commit_seq_no: AtomicI64::new(0),
            put_batch_time_ms: Window::default(),
            record_errors: AtomicU64::new(0),
            record_failures: AtomicU64::new(0),
            records_skipped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            errors_logged: AtomicU64::new(0),
            dlq_produce_requests: AtomicU64::new(0),
            dlq_produce_failures: AtomicU64::new(0),
            last_error_timestamp: AtomicI64::new(0),
        }
    }

    /// A source task's `poll()` returned `records` after `took`.
    pub fn polled(&self, records: usize, took: Duration) {
        let n = records as u64;
        self.source_record_poll_total
            .fetch_add(n, Ordering::Relaxed);
        self.source_record_poll.record(n as f64);
        self.batch_size.record(n as f64);
        self.poll_batch_time_ms.record(millis(took));
    }

    /// A source task handed `records` to the producer.
    pub fn written(&self, records: usize) {
        let n = records as u64;
        self.source_record_write_total
            .fetch_add(n, Ordering::Relaxed);
        self.source_record_write.record(n as f64);
    }

    /// A sink task's consumer returned `records`.
    pub fn read(&self, records: usize) {
        let n = records as u64;
        self.sink_record_read_total.fetch_add(n, Ordering::Relaxed);
        self.sink_record_read.record(n as f64);
        self.batch_size.record(n as f64);
    }

    /// A sink task's `put()` took `records` (after transforms) in `took`.
    pub fn put(&self, records: usize, took: Duration) {
        let n = records as u64;
        self.sink_record_send_total.fetch_add(n, Ordering::Relaxed);
        self.sink_record_send.record(n as f64);
        self.put_batch_time_ms.record(millis(took));
    }

    /// An offset commit (a source flush or a sink consumer commit) finished in `took`.
    pub fn committed(&self, took: Duration) {
        self.offset_commit_time_ms.record(millis(took));
        if self.kind == TaskKind::Sink {
            self.offset_commit_completion_total
                .fetch_add(1, Ordering::Relaxed);
            self.offset_commit_seq_no.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A sink offset commit the coordinator refused (retried at the next one).
    pub fn commit_skipped(&self) {
        self.offset_commit_skip_total
            .fetch_add(1, Ordering::Relaxed);
        self.offset_commit_seq_no.fetch_add(1, Ordering::Relaxed);
    }

    /// A record failed in a stage (conversion, transformation, the task's own report):
    /// `tolerated` when `errors.tolerance=all` let the task go on without it.
    pub fn record_failed(&self, tolerated: bool, logged: bool) {
        self.record_errors.fetch_add(1, Ordering::Relaxed);
        self.record_failures.fetch_add(1, Ordering::Relaxed);
        if tolerated {
            self.records_skipped.fetch_add(1, Ordering::Relaxed);
        }
        if logged {
            self.errors_logged.fetch_add(1, Ordering::Relaxed);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.last_error_timestamp.store(now, Ordering::Relaxed);
    }

    /// An operation of the task was retried under `errors.retry.timeout`.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.record_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A record was sent to the dead letter queue; `ok` when the producer accepted it.
    pub fn dead_lettered(&self, ok: bool) {
        self.dlq_produce_requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.dlq_produce_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A task's identity in the metrics: connector name and task number.
pub type TaskKey = (String, u32);

/// The statistics of the tasks this worker runs.
#[derive(Debug, Default)]
pub struct TaskRegistry {
    tasks: Mutex<BTreeMap<TaskKey, Arc<TaskStats>>>,
}

impl TaskRegistry {
    /// Fresh statistics for a task starting now; they go when the guard is dropped.
    pub fn register(self: &Arc<Self>, connector: &str, task: u32, kind: TaskKind) -> TaskGuard {
        let stats = Arc::new(TaskStats::new(kind));
        let key = (connector.to_string(), task);
        if let Ok(mut t) = self.tasks.lock() {
            t.insert(key.clone(), stats.clone());
        }
        TaskGuard {
            registry: self.clone(),
            key,
            stats,
        }
    }

    pub fn snapshot(&self) -> Vec<(TaskKey, Arc<TaskStats>)> {
        self.tasks
            .lock()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

/// Held by a task loop; removes the task's statistics when it ends (unless a newer run of the
/// same task replaced them meanwhile).
#[derive(Debug)]
pub struct TaskGuard {
    registry: Arc<TaskRegistry>,
    key: TaskKey,
    stats: Arc<TaskStats>,
}

impl std::ops::Deref for TaskGuard {
    type Target = TaskStats;
    fn deref(&self) -> &TaskStats {
        &self.stats
    }
}

impl TaskGuard {
    pub fn stats(&self) -> Arc<TaskStats> {
        self.stats.clone()
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Ok(mut t) = self.registry.tasks.lock()
            && t.get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.stats))
        {
            t.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_average_and_forget_after_two_samples() {
        let w = Window::default();
        assert!(w.avg().is_nan());
        assert!(w.max().is_nan());
        let t0 = Instant::now();
        w.record_at(10.0, t0);
        w.record_at(30.0, t0 + Duration::from_secs(1));
        w.record_at(50.0, t0 + Duration::from_secs(31));
        let live = w.live(t0 + Duration::from_secs(40));
        assert_eq!(live.iter().map(|s| s.count).sum::<u64>(), 3);
        // 61 s on, the first window is gone; 91 s on, both.
        let live = w.live(t0 + Duration::from_secs(61));
        assert_eq!(live.iter().map(|s| s.count).sum::<u64>(), 1);
        assert!(w.live(t0 + Duration::from_secs(92)).is_empty());
        // 90 recorded over a window and a bit: per second over the elapsed time.
        let r = w.rate_at(t0 + Duration::from_secs(45));
        assert!((r - 90.0 / 45.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn a_tasks_statistics_go_with_its_guard_but_not_a_newer_runs() {
        let reg = Arc::new(TaskRegistry::default());
        let first = reg.register("c", 0, TaskKind::Source);
        first.polled(5, Duration::from_millis(2));
        assert_eq!(reg.snapshot().len(), 1);
        let second = reg.register("c", 0, TaskKind::Source);
        drop(first);
        let snap = reg.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(
            snap[0].1.source_record_poll_total.load(Ordering::Relaxed),
            0,
            "the restarted task's own statistics remain"
        );
        drop(second);
        assert!(reg.snapshot().is_empty());
    }

    #[test]
    fn errors_count_as_javas_task_error_metrics() {
        let reg = Arc::new(TaskRegistry::default());
        let t = reg.register("c", 1, TaskKind::Sink);
        t.retried();
        t.record_failed(true, true);
        t.dead_lettered(true);
        t.record_failed(false, false);
        assert_eq!(t.record_errors.load(Ordering::Relaxed), 2);
        assert_eq!(t.record_failures.load(Ordering::Relaxed), 3);
        assert_eq!(t.records_skipped.load(Ordering::Relaxed), 1);
        assert_eq!(t.errors_logged.load(Ordering::Relaxed), 1);
        assert_eq!(t.dlq_produce_requests.load(Ordering::Relaxed), 1);
        assert!(t.last_error_timestamp.load(Ordering::Relaxed) > 1_700_000_000_000);
    }
}
