//! What a worker tells the group when it joins: the protocols it offers and, per protocol, its
//! metadata (`ConnectProtocol.WorkerState` v0, `ExtendedWorkerState` v1/v2).

use crate::assignment::Assignment;
use crate::wire::{Reader, Writer};
use crate::{Error, Result};

/// The JoinGroup protocol type of Connect workers.
pub const PROTOCOL_TYPE: &str = "connect";

/// A Connect sub-protocol. The `connect.protocol` config values (`eager`, `compatible`,
/// `sessioned`) differ from the names on the wire (`default`, `compatible`, `sessioned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnectProtocol {
    /// v0, stop-the-world rebalances.
    Eager,
    /// v1, incremental cooperative rebalancing (KIP-415).
    Compatible,
    /// v2, v1 plus internal request signing (KIP-507); the default.
    Sessioned,
}

impl ConnectProtocol {
    /// From the `connect.protocol` worker setting.
    pub fn from_config(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "eager" => Ok(Self::Eager),
            "compatible" => Ok(Self::Compatible),
            "sessioned" => Ok(Self::Sessioned),
            _ => Err(Error::UnknownProtocol(value.to_string())),
        }
    }

    /// From the protocol name the coordinator chose.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "default" => Some(Self::Eager),
            "compatible" => Some(Self::Compatible),
            "sessioned" => Some(Self::Sessioned),
            _ => None,
        }
    }

    /// The name in JoinGroup's protocol list.
    pub fn name(self) -> &'static str {
        match self {
            Self::Eager => "default",
            Self::Compatible => "compatible",
            Self::Sessioned => "sessioned",
        }
    }

    /// The metadata and assignment version this protocol writes.
    pub fn version(self) -> i16 {
        match self {
            Self::Eager => 0,
            Self::Compatible => 1,
            Self::Sessioned => 2,
        }
    }

    /// The protocols a worker configured with `self` offers, most preferred first: a worker
    /// also speaks every older protocol so that a mixed group can agree on one.
    pub fn offered(self) -> &'static [ConnectProtocol] {
        match self {
            Self::Eager => &[Self::Eager],
            Self::Compatible => &[Self::Compatible, Self::Eager],
            Self::Sessioned => &[Self::Sessioned, Self::Compatible, Self::Eager],
        }
    }

    /// Whether work is kept running across rebalances.
    pub fn is_cooperative(self) -> bool {
        self != Self::Eager
    }

    /// Whether internal REST requests are signed (KIP-507).
    pub fn signs_requests(self) -> bool {
        self == Self::Sessioned
    }
}

/// A member's metadata for one protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerMetadata {
    pub version: i16,
    /// The worker's advertised REST URL.
    pub url: String,
    /// The offset of the worker's config-topic snapshot when it built the JoinGroup.
    pub config_offset: i64,
    /// v1/v2: everything the worker runs now (cumulative), as an assignment with its own
    /// header; `None` before its first assignment or after it dropped everything.
    pub allocation: Option<Assignment>,
}

impl WorkerMetadata {
    /// What the member ran when it built this metadata: its allocation's work, empty for v0 and
    /// for a member with no assignment yet.
    pub fn running(&self) -> crate::Work {
        self.allocation
            .as_ref()
            .map(Assignment::assigned_work)
            .unwrap_or_default()
    }

    /// Reads metadata: the version header, then url and offset, then (when bytes remain) the
    /// allocation; trailing bytes are ignored, so newer versions read as far as this one knows.
    pub fn decode(bytes: &[u8]) -> Result<WorkerMetadata> {
        let mut r = Reader::new(bytes, "Connect member metadata");
        let version = r.i16("version")?;
        if version < 0 {
            return Err(Error::Invalid {
                what: "Connect member metadata",
                field: "version",
                reason: format!("version {version} is negative"),
            });
        }
        let url = r.string("url")?;
        let config_offset = r.i64("config-offset")?;
        let allocation = if version == 0 || r.is_empty() {
            None
        } else {
            r.nullable_bytes("allocation")?
                .map(Assignment::decode)
                .transpose()?
        };
        Ok(WorkerMetadata {
            version,
            url,
            config_offset,
            allocation,
        })
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        w.i16(self.version);
        w.string("url", &self.url)?;
        w.i64(self.config_offset);
        if self.version >= 1 {
            let allocation = self
                .allocation
                .as_ref()
                .map(Assignment::encode)
                .transpose()?;
            w.nullable_bytes("allocation", allocation.as_deref())?;
        }
        Ok(w.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// connect-compat.md §4.4: v2 metadata, url http://w1:8083/, offset 5, no allocation.
    #[test]
    fn the_v2_metadata_example_decodes_and_encodes_byte_exact() {
        let bytes: Vec<u8> = [
            &[0x00, 0x02, 0x00, 0x0f][..],
            b"http://w1:8083/",
            &[0, 0, 0, 0, 0, 0, 0, 5],
            &[0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        let m = WorkerMetadata::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m,
            WorkerMetadata {
                version: 2,
                url: "http://w1:8083/".into(),
                config_offset: 5,
                allocation: None
            }
        );
        assert_eq!(m.encode().unwrap_or_else(|e| panic!("{e}")), bytes);
    }

    #[test]
    fn v0_metadata_has_no_allocation_and_newer_versions_read_what_is_known() {
        let v0 = WorkerMetadata {
            version: 0,
            url: "http://a/".into(),
            config_offset: -1,
            allocation: None,
        };
        let bytes = v0.encode().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bytes.len(), 2 + 2 + 9 + 8);
        assert_eq!(WorkerMetadata::decode(&bytes), Ok(v0));
        // A v3 with an extra trailing field still reads.
        let mut v3 = WorkerMetadata {
            version: 3,
            url: "http://a/".into(),
            config_offset: 7,
            allocation: None,
        }
        .encode()
        .unwrap_or_else(|e| panic!("{e}"));
        v3.extend_from_slice(&[1, 2, 3]);
        assert_eq!(WorkerMetadata::decode(&v3).map(|m| m.config_offset), Ok(7));
    }

    #[test]
    fn protocols_offered_most_preferred_first() {
        let names = |p: ConnectProtocol| p.offered().iter().map(|p| p.name()).collect::<Vec<_>>();
        assert_eq!(
            names(ConnectProtocol::Sessioned),
            ["sessioned", "compatible", "default"]
        );
        assert_eq!(
            names(ConnectProtocol::Compatible),
            ["compatible", "default"]
        );
        assert_eq!(names(ConnectProtocol::Eager), ["default"]);
        assert_eq!(
            ConnectProtocol::from_config("eager"),
            Ok(ConnectProtocol::Eager)
        );
        assert!(ConnectProtocol::from_config("default").is_err());
    }
}
