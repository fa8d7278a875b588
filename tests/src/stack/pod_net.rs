//! Pod networking for the pod runner: a Linux bridge on the host (`tribbr0`, 10.244.0.1/16) and,
//! per pod, a network namespace with its own IP on a veth pair into the bridge. Pods reach each
//! other and the host's bridge address (where Kafka and the apiserver also listen for them);
//! names resolve through `/etc/netns/<ns>/hosts`, which `ip netns exec` mounts as `/etc/hosts`.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); without it the devstack fails saying so.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const BRIDGE: &str = "tribbr0";
/// The host's address on the pod network.
pub const HOST_IP: &str = "10.244.0.1";
const PREFIX: u8 = 16;

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (package iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Creates (or reuses) the bridge with the host address.
pub fn ensure_bridge() -> Result<()> {
    let exists = Command::new("ip")
        .args(["link", "show", BRIDGE])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        ip(&["link", "add", BRIDGE, "type", "bridge"]).context(
            "the pod runner needs root to create a network bridge (run the devstack as root, or with CAP_NET_ADMIN)",
        )?;
    }
    ip(&[
        "addr",
        "replace",
        &format!("{HOST_IP}/{PREFIX}"),
        "dev",
        BRIDGE,
    ])?;
    ip(&["link", "set", BRIDGE, "up"])?;
    Ok(())
}

/// The `n`th pod address (n ≥ 1): 10.244.0.2, 10.244.0.3, … 10.244.255.254.
pub fn pod_ip(n: u32) -> String {
    let v = n + 1;
    format!("10.244.{}.{}", (v / 254) % 256, v % 254 + 1)
}

/// A pod's network namespace.
#[derive(Debug, Clone)]
pub struct PodNet {
    pub netns: String,
    pub ip: String,
    host_if: String,
}

impl PodNet {
    /// Creates namespace `netns` with `ip` on `eth0`, routed through the bridge. `tag` (≤ 10
    /// characters) names the host side of the veth pair.
    pub fn create(netns: &str, tag: &str, pod_ip: &str) -> Result<Self> {
        let _ = Command::new("ip").args(["netns", "del", netns]).output();
        ip(&["netns", "add", netns])?;
        let host_if = format!("vh{tag}");
        let pod_if = format!("vp{tag}");
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &pod_if,
        ])?;
        ip(&["link", "set", &pod_if, "netns", netns])?;
        ip(&["link", "set", &host_if, "master", BRIDGE, "up"])?;
        ip(&["-n", netns, "link", "set", &pod_if, "name", "eth0"])?;
        ip(&[
            "-n",
            netns,
            "addr",
            "add",
            &format!("{pod_ip}/{PREFIX}"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", netns, "link", "set", "eth0", "up"])?;
        ip(&["-n", netns, "link", "set", "lo", "up"])?;
        ip(&["-n", netns, "route", "add", "default", "via", HOST_IP])?;
        Ok(Self {
            netns: netns.to_string(),
            ip: pod_ip.to_string(),
            host_if,
        })
    }

    /// `/etc/netns/<netns>/hosts`.
    pub fn hosts_file(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.netns).join("hosts")
    }

    /// Writes the hosts file in place (same inode: a running process's bind mount sees it).
    pub fn write_hosts(&self, text: &str) -> Result<()> {
        let path = self.hosts_file();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        f.set_len(0)?;
        f.rewind()?;
        f.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Takes the host side of the veth pair down or up: a cable pulled and plugged back in. The
    /// namespace keeps its address and routes, so connections resume on their own after `up`.
    pub fn set_link(&self, up: bool) -> Result<()> {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }])
    }

    /// Removes the namespace (and with it the veth pair) and its files.
    pub fn delete(&self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.netns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_addresses_skip_the_host_and_broadcast() {
        assert_eq!(pod_ip(1), "10.244.0.3");
        assert_eq!(pod_ip(252), "10.244.0.254");
        assert_eq!(pod_ip(253), "10.244.1.1");
        let all: std::collections::BTreeSet<String> = (1..2000).map(pod_ip).collect();
        assert_eq!(all.len(), 1999);
        assert!(!all.contains(HOST_IP));
    }
}
