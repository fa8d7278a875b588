//! Free loopback ports, so several stacks (a demo and a test run) can share one machine.
//!
//! A port is chosen here and bound later by another process (a worker, the broker), so there is
//! a window in which someone else can take it. Ports from `bind(0)` come from the kernel's
//! ephemeral range, the same range every outgoing connection's local port comes from: a Kafka
//! client connecting somewhere in that window could take the port a worker was about to listen
//! on (CI once failed that way with "Address already in use"). So ports are picked below the
//! ephemeral range, where the kernel never assigns outgoing ports, at random, and never twice in
//! one process.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// Lowest port handed out: above the well-known and most registered service ports.
const LOWEST: u16 = 12_000;

/// Ports this process has handed out, so two tests in one binary never get the same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Reserves `n` distinct free ports on 127.0.0.1. All listeners are held until every port is
/// chosen, so none of them is handed out twice.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let Some(highest) = ephemeral_low().and_then(|low| low.checked_sub(1)) else {
        return kernel_ports(n);
    };
    if highest < LOWEST + 1_000 {
        return kernel_ports(n);
    }
    let mut handed = HANDED_OUT
        .lock()
        .map_err(|_| anyhow::anyhow!("port registry poisoned"))?;
    let handed = handed.get_or_insert_with(HashSet::new);
    let span = u64::from(highest - LOWEST) + 1;
    let mut state = seed();
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        if tries > 10_000 {
            bail!("no free loopback port between {LOWEST} and {highest} after 10000 tries");
        }
        state = xorshift(state);
        let port = LOWEST + u16::try_from(state % span).context("port in range")?;
        if handed.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            handed.insert(port);
            held.push(l);
            ports.push(port);
        }
    }
    Ok(ports)
}

/// The kernel's choice, when no range below the ephemeral one can be used.
fn kernel_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("binding a free loopback port"))
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// First port of Linux's ephemeral range; `None` where there is no such file.
fn ephemeral_low() -> Option<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_below_the_ephemeral_range() {
        let a = free_ports(20).unwrap();
        let b = free_ports(20).unwrap();
        let all: HashSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 40, "{a:?} {b:?}");
        if let Some(low) = ephemeral_low() {
            assert!(all.iter().all(|p| *p < low && *p >= LOWEST), "{all:?}");
        }
        for p in all {
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }
}
