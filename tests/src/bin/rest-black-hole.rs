//! A stand-in worker for the pod runner (image `tributary.dev/test/rest-black-hole`): its
//! probes pass on the admin port 8084, while its REST port 8083 accepts connections (the kernel
//! completes them into the listen backlog) and never answers — a cluster whose REST API hangs,
//! to show that it does not hold up the operator's other clusters.

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    // `tributary-worker leave` (the preStop hook) has nothing to leave here.
    if std::env::args().nth(1).as_deref() == Some("leave") {
        return Ok(());
    }
    let _rest = TcpListener::bind("0.0.0.0:8083")?;
    let admin = TcpListener::bind("0.0.0.0:8084")?;
    for stream in admin.incoming() {
        let Ok(mut stream) = stream else { continue };
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
            );
        });
    }
    Ok(())
}
