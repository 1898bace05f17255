//! One run of a check against its target: TCP connect, HTTP/1.0 GET, or a program.
//! Each run is bounded by the check's timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::Target;

/// What one run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub ok: bool,
    /// `connected`, `HTTP 200`, `exit 1: <last output line>`, `connection refused`...
    pub detail: String,
    pub took: Duration,
}

/// Runs the check once.
pub fn run(target: &Target, timeout: Duration) -> Sample {
    let started = Instant::now();
    let deadline = started + timeout;
    let (ok, detail) = match target {
        Target::Tcp { host, port } => match connect(host, *port, deadline) {
            Ok(_) => (true, "connected".to_string()),
            Err(e) => (false, e),
        },
        Target::Http { host, port, path } => match get(host, *port, path, deadline) {
            Ok(code) if (200..400).contains(&code) => (true, format!("HTTP {code}")),
            Ok(code) => (false, format!("HTTP {code}")),
            Err(e) => (false, e),
        },
        Target::Exec(argv) => {
            let ran = crate::exec::run(argv, &[], timeout);
            (ran.success(), ran.summary())
        }
    };
    Sample {
        ok,
        detail,
        took: started.elapsed(),
    }
}

fn left(deadline: Instant) -> Result<Duration, String> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err("timed out".into())
    } else {
        Ok(d)
    }
}

fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(s) => return Ok(s),
            Err(e)
                if e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                last = format!("connect to {addr} timed out");
            }
            Err(e) => last = format!("connect to {addr}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

/// `GET path HTTP/1.0` and the status code of the answer.
fn get(host: &str, port: u16, path: &str, deadline: Instant) -> Result<u16, String> {
    let mut s = connect(host, port, deadline)?;
    let host_header = if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: floatip/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    s.set_write_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes())
        .map_err(|e| format!("sending the request: {}", io_reason(&e)))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && !head.contains(&b'\n') && head.len() < 1024 {
        s.set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("reading the answer: {}", io_reason(&e))),
        }
    }
    status_code(&head)
}

/// `connection refused`, `timed out`: the error without its `(os error N)` tail.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            text.to_lowercase()
        }
    }
}

/// The code in a status line `HTTP/1.x NNN reason`.
fn status_code(head: &[u8]) -> Result<u16, String> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end();
    if line.is_empty() {
        return Err("the server closed the connection without an answer".into());
    }
    let mut words = line.split_whitespace();
    let version = words.next().unwrap_or_default();
    match (
        version.starts_with("HTTP/"),
        words.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (true, Some(code)) if (100..1000).contains(&code) => Ok(code),
        _ => Err(format!(
            "not an HTTP answer: {:?}",
            line.chars().take(60).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// An HTTP server on 127.0.0.1 answering every request with `answer`; returns its port.
    fn server(answer: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                let _ = c.write_all(answer.as_bytes());
            }
        });
        port
    }

    fn http(port: u16, timeout: Duration) -> Sample {
        run(
            &Target::Http {
                host: "127.0.0.1".into(),
                port,
                path: "/health".into(),
            },
            timeout,
        )
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.0 200 OK\r\n"), Ok(200));
        assert_eq!(
            status_code(b"HTTP/1.1 503 Service Unavailable\r\nx"),
            Ok(503)
        );
        assert_eq!(status_code(b"HTTP/1.1 301\n"), Ok(301));
        assert!(status_code(b"").unwrap_err().contains("without an answer"));
        assert!(status_code(b"SSH-2.0-OpenSSH\r\n")
            .unwrap_err()
            .contains("not an HTTP answer"));
        assert!(status_code(b"HTTP/1.1 abc\r\n").is_err());
    }

    #[test]
    fn tcp_connect_and_refusal() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let up = run(
            &Target::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            ms(1000),
        );
        assert!(up.ok, "{up:?}");
        drop(l);
        let down = run(
            &Target::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            ms(1000),
        );
        assert!(!down.ok);
        assert!(down.detail.contains("refused"), "{}", down.detail);
    }

    #[test]
    fn http_2xx_3xx_pass_others_fail() {
        assert_eq!(
            http(server("HTTP/1.0 200 OK\r\n\r\nfine"), ms(1000)).detail,
            "HTTP 200"
        );
        assert!(
            http(
                server("HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n"),
                ms(1000)
            )
            .ok
        );
        let s = http(server("HTTP/1.1 503 Service Unavailable\r\n\r\n"), ms(1000));
        assert!(!s.ok);
        assert_eq!(s.detail, "HTTP 503");
        assert!(!http(server("garbage\r\n"), ms(1000)).ok);
    }

    #[test]
    fn http_request_is_a_plain_get() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = c.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
            }
            c.write_all(b"HTTP/1.0 204 No Content\r\n\r\n").unwrap();
            String::from_utf8(req).unwrap()
        });
        assert!(http(port, ms(1000)).ok);
        let req = seen.join().unwrap();
        assert!(
            req.starts_with(&format!(
                "GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
            )),
            "{req}"
        );
    }

    #[test]
    fn http_server_that_never_answers_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t0 = Instant::now();
        let s = http(port, ms(200));
        assert!(!s.ok);
        assert!(s.detail.contains("timed out"), "{}", s.detail);
        assert!(t0.elapsed() < ms(600), "{:?}", t0.elapsed());
        drop(l);
    }

    #[test]
    fn exec_passes_on_exit_zero_and_overrun_fails() {
        assert!(run(&Target::Exec(vec!["/bin/true".into()]), ms(1000)).ok);
        let f = run(
            &Target::Exec(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo no db; exit 2".into(),
            ]),
            ms(1000),
        );
        assert_eq!((f.ok, f.detail.as_str()), (false, "exit 2: no db"));
        let t0 = Instant::now();
        let hang = run(
            &Target::Exec(vec!["/bin/sleep".into(), "10".into()]),
            ms(150),
        );
        assert!(!hang.ok);
        assert!(
            hang.detail.contains("timed out after 150 ms"),
            "{}",
            hang.detail
        );
        assert!(t0.elapsed() < ms(600));
    }
}
