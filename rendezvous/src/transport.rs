//! QUIC transport settings shared by the relay, its clients and the raw
//! `quinn` baseline of the benchmark, so that the baseline measures the
//! same transport the relay runs on.

use quinn::TransportConfig;

/// Settings every endpoint of the relay's protocol uses, before the role's
/// own windows and timeouts are applied.
///
/// They are quinn's defaults today (1200-byte initial MTU, discovery up to
/// 1452, GSO on). Jumbo datagrams were tried on loopback (discovery up to
/// 65,000 bytes): losses in the 4 MiB socket buffers made both the ring
/// and the raw baseline several times slower, so they stay off.
pub fn base_transport() -> TransportConfig {
    TransportConfig::default()
}
