//! UDP sockets with room for bursts.
//!
//! The kernel's default UDP receive buffer (about 208 KiB on Linux) is
//! smaller than what a hundred clients put in flight at once; every
//! datagram dropped there costs a QUIC loss recovery and a congestion
//! backoff. So endpoints bind their own sockets with larger buffers (the
//! kernel caps the request at `net.core.rmem_max`/`wmem_max`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a non-blocking UDP socket at `addr` asking for `buffer` bytes of
/// send and receive buffer. Buffer requests the kernel refuses are ignored:
/// they only cost speed.
pub(crate) fn udp_socket(addr: SocketAddr, buffer: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // `[::]` also serves IPv4 clients where the OS allows it.
        let _ = socket.set_only_v6(false);
    }
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// UDP buffer a client asks for: room for a few get answers in flight.
pub const CLIENT_SOCKET_BUFFER: usize = 2 << 20;

/// A quinn endpoint over a UDP socket with `buffer` bytes of send and
/// receive buffer, with the endpoint settings the relay and its clients
/// use. Public so the benchmark's raw baseline binds its endpoints the same
/// way. Must be called inside a Tokio runtime.
///
/// # Errors
/// The OS error if the socket cannot be bound.
pub fn endpoint(
    addr: SocketAddr,
    buffer: usize,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    let socket = udp_socket(addr, buffer)?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
}
