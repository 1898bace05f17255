//! A minimal HTTP/1.1 server for `GET /metrics`: one connection at a time, each bounded
//! in size and time, so a scraper (or anything else that connects) costs little.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The largest request head read; a scrape's is a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request, and to read the answer.
const DEADLINE: Duration = Duration::from_secs(2);

pub struct Server {
    pub addr: SocketAddr,
}

impl Server {
    /// Listens on `addr` and answers from a thread; `scrape` returns the page, or `None`
    /// if the daemon did not answer in time (then 503).
    pub fn start(
        addr: SocketAddr,
        scrape: impl Fn() -> Option<String> + Send + 'static,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        std::thread::Builder::new()
            .name("fip-metrics".into())
            .spawn(move || {
                // One at a time: connections wait in the kernel's backlog, never in threads.
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let _ = serve(stream, &scrape);
                }
            })?;
        Ok(Server { addr })
    }
}

fn serve(mut stream: TcpStream, scrape: &dyn Fn() -> Option<String>) -> std::io::Result<()> {
    stream.set_write_timeout(Some(DEADLINE))?;
    let (status, body) = match read_head(&mut stream)? {
        None => ("413 Content Too Large", String::new()),
        Some(head) => answer(&head, scrape),
    };
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())
}

/// The request head, or `None` if it is larger than [`MAX_REQUEST`].
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let until = Instant::now() + DEADLINE;
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST {
            return Ok(None);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf)? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

/// Status line and body for a request head.
fn answer(head: &str, scrape: &dyn Fn() -> Option<String>) -> (&'static str, String) {
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    match (method, path.split('?').next().unwrap_or_default()) {
        ("GET", "/metrics") => match scrape() {
            Some(text) => ("200 OK", text),
            None => ("503 Service Unavailable", String::new()),
        },
        (_, "/metrics") => ("405 Method Not Allowed", String::new()),
        _ => ("404 Not Found", String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_only_get_metrics_and_bounds_the_request() {
        let server =
            Server::start("127.0.0.1:0".parse().unwrap(), || Some("x 1\n".into())).unwrap();
        let ok = get(server.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nx 1\n"), "{ok}");
        let post = get(server.addr, b"POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let other = get(server.addr, b"GET / HTTP/1.1\r\n\r\n");
        assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat(b'a').take(MAX_REQUEST + 10));
        let big = get(server.addr, &huge);
        assert!(big.starts_with("HTTP/1.1 413 "), "{big}");
    }
}
