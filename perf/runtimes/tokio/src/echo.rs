//! Tokio TCP echo server, the counterpart of perf/runtimes/asio/echo_server.cpp.
//!
//!   perf_echo_tokio --port P [--buf BYTES] [--threads T]
//!
//! An accept loop that spawns one task per connection; the task reads what is
//! there into its own buffer and writes it back (write_all). One thread:
//! current_thread runtime (the default, as the other servers run one thread);
//! --threads T > 1: multi_thread runtime with T workers.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let port = arg("--port", 7000) as u16;
    let buf_size = arg("--buf", 4096) as usize;
    let threads = arg("--threads", 1);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads as usize)
            .enable_all()
            .build()
    }
    .expect("runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        eprintln!("tokio echo server on 127.0.0.1:{}", port);
        loop {
            let (mut socket, _) = match listener.accept().await {
                Ok(s) => s,
                Err(_) => continue,
            };
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; buf_size];
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}
