//! Free loopback ports, so several stacks (a demo and a test run) can share one machine.

use std::net::TcpListener;

use anyhow::{Context, Result};

/// Reserves `n` distinct free ports on 127.0.0.1. All listeners are held until every port is
/// chosen, so the kernel cannot hand out the same port twice.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("binding a free loopback port"))
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}
