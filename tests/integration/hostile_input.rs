//! A stranger on the LAN attacks the heartbeat port: nodes n1 and n2 run floatip
//! with a shared key at interval 100 ms / timeout 300 ms; a third namespace, "evil", runs
//! no floatip. Evil captures the group's broadcasts (including a Resign), then floods the
//! port with garbage datagrams and connections, hundreds of half-open connections, replays
//! of everything it captured and forged Announce/Resign messages without the key. The
//! group must keep exactly one holder, still hand over on SIGTERM within the usual bound,
//! count what it dropped, and log it at a rate limit.
//!
//! Run: `cargo nextest run --test integration -E 'test(hostile_input::)' --no-capture` (as root).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{status_json, BIN};
use floatip::vocabulary::{BootId, Priority, Role};
use floatip::wire::{self, Kind, Message};
use floatip_lab::floatip::*;
use floatip_lab::{Lab, Proc};

const BROADCAST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 255);

fn node_config(lab: &Lab, node: &str, key_file: &str) -> std::path::PathBuf {
    group_config(lab, node, Some(key_file), &[])
}

/// Sockets created inside evil's namespace (a socket stays in the namespace it was made in).
fn evil_udp(lab: &Lab, bind_port: u16) -> UdpSocket {
    lab.in_ns("evil", move || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        s.set_broadcast(true).unwrap();
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, bind_port)).into())
            .unwrap();
        UdpSocket::from(s)
    })
}

fn evil_tcp_sockets(lab: &Lab, n: usize) -> Vec<socket2::Socket> {
    lab.in_ns("evil", move || {
        (0..n)
            .map(|_| {
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap()
            })
            .collect()
    })
}

fn connect(s: socket2::Socket, to: Ipv4Addr) -> Option<TcpStream> {
    let addr: SocketAddr = SocketAddrV4::new(to, ECHO_PORT).into();
    s.connect_timeout(&addr.into(), ms(300)).ok()?;
    Some(TcpStream::from(s))
}

/// A plausible message from evil, in the plain (unauthenticated) form.
fn forged(kind: Kind, node: Ipv4Addr, successor: Option<Ipv4Addr>, seq: u64) -> Message {
    Message {
        kind,
        role: Role::Master,
        priority: Priority(254),
        preempt_request: true,
        vip: VIP.into(),
        node: node.into(),
        mac: [2, 0, 0xc0, 0, 2, 13],
        successor: successor.map(Into::into),
        boot: BootId(0xe7e7_e7e7 ^ seq),
        seq,
    }
}

/// Garbage of every shape: random bytes, truncated, oversized, wrong and future versions,
/// forged plain messages and forged authenticated ones with a wrong key.
fn garbage(i: u64, evil: Ipv4Addr, victim: Ipv4Addr) -> Vec<u8> {
    let rnd = |n: usize| floatip_lab::noise_of(i, n);
    let valid = wire::encode(&forged(Kind::Announce, evil, None, i));
    let wrong_key = floatip::auth::Auth::new(floatip::auth::Key::new(vec![b'x'; 32]).unwrap());
    let stamp = wire::Stamp {
        time_ms: now_ms(),
        reply_to: None,
    };
    match i % 10 {
        0 => rnd(1 + (i as usize % 300)),
        1 => valid[..(i as usize % 47) + 1].to_vec(),
        2 => {
            let mut b = valid.to_vec();
            b.extend(rnd(2000));
            b
        }
        3 => {
            let mut b = valid;
            b[4] = 2 + (i % 200) as u8;
            b.to_vec()
        }
        4 => {
            let mut b = valid;
            b[6] = 0xff;
            b[7] = 0xff;
            b.to_vec()
        }
        5 => wire::encode(&forged(Kind::Resign, evil, Some(victim), i)).to_vec(),
        6 => wire::encode_authenticated(
            &forged(Kind::Resign, evil, Some(victim), i),
            &stamp,
            &wrong_key,
        )
        .to_vec(),
        7 => wire::encode_authenticated(&forged(Kind::Announce, evil, None, i), &stamp, &wrong_key)
            .to_vec(),
        8 => {
            let mut b = wire::encode_authenticated(
                &forged(Kind::Released, evil, None, i),
                &stamp,
                &wrong_key,
            );
            b[100] ^= 1;
            b.to_vec()
        }
        _ => {
            let mut b = valid.to_vec();
            b.extend(rnd(56));
            b[10] |= 2;
            b[7] = 104;
            b
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[derive(Default)]
struct Figures {
    datagrams: AtomicU64,
    replays: AtomicU64,
    tcp_garbage: AtomicU64,
    half_open: AtomicU64,
    half_open_tried: AtomicU64,
}

#[test]
fn stranger_cannot_fool_or_crash_the_heartbeat_port() {
    let Some(lab) = Lab::new("hostile", &["n1", "n2", "evil"]) else {
        return;
    };
    let t = Timing::FAST;
    let key_file = write_key(&lab);
    let cfg = |n: &str| node_config(&lab, n, &key_file);
    let (evil, n1ip, n2ip) = (lab.ip("evil"), lab.ip("n1"), lab.ip("n2"));
    let mut procs: Vec<(&str, Proc)> = vec![
        ("n1", start(&lab, BIN, "n1", &cfg("n1"))),
        ("n2", start(&lab, BIN, "n2", &cfg("n2"))),
    ];
    let (first, _) = wait_one_holder(&lab, t.startup_bound() * 2 + ms(2000));
    std::thread::sleep(t.interval * 5);

    // 1. Capture: evil listens on the port while the holder hands over and comes back.
    let capture = evil_udp(&lab, ECHO_PORT);
    capture.set_read_timeout(Some(ms(50))).unwrap();
    let capturing = Arc::new(AtomicBool::new(true));
    let cap_thread = {
        let on = capturing.clone();
        std::thread::spawn(move || {
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut buf = [0u8; 512];
            while on.load(Ordering::Relaxed) {
                if let Ok((n, from)) = capture.recv_from(&mut buf) {
                    if from.ip() != std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 13)) {
                        got.push(buf[..n].to_vec());
                    }
                }
            }
            got
        })
    };
    std::thread::sleep(ms(500));
    let i = procs.iter().position(|(n, _)| *n == first).unwrap();
    let (name, p) = procs.remove(i);
    assert!(p.stop().success());
    let second = if first == "n1" { "n2" } else { "n1" };
    wait_stable_holder(&lab, second, ms(300), ms(3000));
    procs.push((name, start(&lab, BIN, name, &cfg(name))));
    std::thread::sleep(ms(1000));
    capturing.store(false, Ordering::Relaxed);
    let captured = cap_thread.join().unwrap();
    let kinds: Vec<Kind> = captured
        .iter()
        .filter_map(|b| wire::decode(b).ok())
        .map(|d| d.message.kind)
        .collect();
    assert!(
        kinds.contains(&Kind::Resign),
        "no Resign captured: {kinds:?}"
    );
    assert!(
        captured.iter().all(|b| b.len() == wire::AUTH_MESSAGE_LEN),
        "the group must speak the authenticated form"
    );
    let (holder, _) = wait_one_holder(&lab, ms(3000));
    wait_stable_holder(&lab, &holder, ms(500), ms(3000));
    let backup = if holder == "n1" { "n2" } else { "n1" };
    let backup_ip = lab.ip(backup);

    // 2. The attack: five threads for ~4.5 s.
    let figures = Arc::new(Figures::default());
    let attacking = Arc::new(AtomicBool::new(true));
    let mut threads = Vec::new();
    {
        // Garbage and forged datagrams, to the broadcast address and to each node.
        let (f, on, sock) = (figures.clone(), attacking.clone(), evil_udp(&lab, 0));
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while on.load(Ordering::Relaxed) {
                let b = garbage(i, evil, backup_ip);
                for to in [BROADCAST, n1ip, n2ip, VIP] {
                    if sock.send_to(&b, (to, ECHO_PORT)).is_ok() {
                        f.datagrams.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
                if i % 8 == 0 {
                    std::thread::sleep(ms(1));
                }
            }
        }));
    }
    {
        // Replays of every captured message (a Resign among them), again and again.
        let (f, on, sock, captured) = (
            figures.clone(),
            attacking.clone(),
            evil_udp(&lab, 0),
            captured.clone(),
        );
        threads.push(std::thread::spawn(move || {
            while on.load(Ordering::Relaxed) {
                for b in &captured {
                    for to in [BROADCAST, n1ip, n2ip] {
                        if sock.send_to(b, (to, ECHO_PORT)).is_ok() {
                            f.replays.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                std::thread::sleep(ms(20));
            }
        }));
    }
    {
        // Garbage over TCP: connect, write junk (or a replayed heartbeat), close.
        let (f, on) = (figures.clone(), attacking.clone());
        let sockets = evil_tcp_sockets(&lab, 3000);
        let captured = captured.clone();
        threads.push(std::thread::spawn(move || {
            for (i, s) in sockets.into_iter().enumerate() {
                if !on.load(Ordering::Relaxed) {
                    break;
                }
                let to = [VIP, n1ip, n2ip][i % 3];
                if let Some(mut c) = connect(s, to) {
                    let b = if i % 4 == 3 {
                        captured[i % captured.len()].clone()
                    } else {
                        garbage(i as u64, evil, backup_ip)
                    };
                    let _ = c.write_all(&b);
                    f.tcp_garbage.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        }));
    }
    {
        // Half-open: hundreds of connections that never send a byte, held until the end.
        let (f, on) = (figures.clone(), attacking.clone());
        let sockets = evil_tcp_sockets(&lab, 400);
        threads.push(std::thread::spawn(move || {
            let mut held = Vec::new();
            for (i, s) in sockets.into_iter().enumerate() {
                f.half_open_tried.fetch_add(1, Ordering::Relaxed);
                if let Some(c) = connect(s, [VIP, n1ip, n2ip][i % 3]) {
                    held.push(c);
                    f.half_open.fetch_add(1, Ordering::Relaxed);
                }
            }
            while on.load(Ordering::Relaxed) {
                std::thread::sleep(ms(20));
            }
            drop(held);
        }));
    }

    // 3. Under attack: exactly one holder, the same one, for 2 s.
    let attack_start = Instant::now();
    let mut bad_samples = Vec::new();
    let mut samples = 0;
    while attack_start.elapsed() < ms(2000) {
        let h = lab.holders(VIP);
        samples += 1;
        if h != [holder.clone()] {
            bad_samples.push((attack_start.elapsed(), h));
        }
        std::thread::sleep(ms(5));
    }

    // 4. Still under attack: SIGTERM the holder; the backup must take over alone.
    let stopped_at = Instant::now();
    let i = procs.iter().position(|(n, _)| *n == holder).unwrap();
    let (_, stopped) = procs.remove(i);
    let stop_status = stopped.stop();
    let moved = lab.wait_until(t.outage_bound(), ms(2), || {
        lab.holders(VIP) == [backup.to_string()]
    });
    let failover = stopped_at.elapsed();
    let mut after_bad = Vec::new();
    let after = Instant::now();
    while after.elapsed() < ms(1500) {
        let h = lab.holders(VIP);
        if h != [backup.to_string()] {
            after_bad.push((after.elapsed(), h));
        }
        std::thread::sleep(ms(5));
    }
    let attack_len = attack_start.elapsed();
    attacking.store(false, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }

    // 5. Counted, logged at a rate limit, nothing crashed.
    let survivor = &procs.iter().find(|(n, _)| *n == backup).unwrap().1;
    assert!(
        survivor.is_running(),
        "the backup died under attack:\n{}",
        survivor.log()
    );
    let status = status_json(&lab, backup);
    let rejected = status["counters"]["messages_rejected"].as_u64().unwrap();
    let auth_failures = status["counters"]["auth_failures"].as_u64().unwrap();
    let evil_lines = log_lines(survivor, "dropped from 192.0.2.13").len();
    let log = survivor.log();
    let f = &figures;
    println!(
        "FLOOD datagrams={} replays={} tcp_garbage_connections={} half_open={}/{} over {} ms; captured {} messages ({:?})",
        f.datagrams.load(Ordering::Relaxed),
        f.replays.load(Ordering::Relaxed),
        f.tcp_garbage.load(Ordering::Relaxed),
        f.half_open.load(Ordering::Relaxed),
        f.half_open_tried.load(Ordering::Relaxed),
        attack_len.as_millis(),
        captured.len(),
        kinds
    );
    println!("SCENARIO hostile_sigterm_under_flood failover={}ms rejected={rejected} auth_failures={auth_failures} log_lines_about_evil={evil_lines}", failover.as_millis());

    let mut table = Table::new("hostile heartbeat port");
    table.equal(
        "samples with holders != [holder] under attack",
        bad_samples.len(),
        0,
    );
    table.check(
        "holder sampled under attack",
        samples > 100,
        format!("{samples} samples"),
    );
    table.check(
        "stopped holder exits 0",
        stop_status.success(),
        format!("{stop_status}"),
    );
    table.check(
        "backup took over under attack",
        moved,
        format!("holders {:?}", lab.holders(VIP)),
    );
    table.below("SIGTERM hand-over under attack", failover, t.outage_bound());
    table.equal("samples with holders != [backup] after", after_bad.len(), 0);
    table.check(
        "messages_rejected counted",
        rejected > 1000,
        format!("{rejected}"),
    );
    // How many forgeries reach the key check depends on the rate limit and the
    // machine's load (exactly 100 seen under a full test run): counted at all is the claim.
    table.check(
        "auth_failures counted",
        auth_failures > 0,
        format!("{auth_failures}"),
    );
    // One line per source and kind of trouble (malformed, auth, limits) per 10 s.
    table.check(
        "log lines about evil rate-limited",
        (1..=6).contains(&evil_lines),
        format!("{evil_lines} lines"),
    );
    table.check(
        "log says why (key required)",
        log.contains("requires floating_ip.auth") || log.contains("authentication failed"),
        "no auth log line",
    );
    table.check("no panic", !log.contains("panicked"), "panic in log");
    table.finish(&format!(
        "under attack: {bad_samples:?}\nafter: {after_bad:?}\nbackup log:\n{log}"
    ));
}

/// Forged Resign (naming the backup as successor) and Announce (a priority-254 master)
/// without the key, one at a time and quietly (no flood): the address must not move.
#[test]
fn forged_resign_and_announce_without_the_key_do_not_move_the_address() {
    let Some(lab) = Lab::new("forged", &["n1", "n2", "evil"]) else {
        return;
    };
    let t = Timing::FAST;
    let key_file = write_key(&lab);
    let cfg = |n: &str| node_config(&lab, n, &key_file);
    let _n1 = start(&lab, BIN, "n1", &cfg("n1"));
    let _n2 = start(&lab, BIN, "n2", &cfg("n2"));
    let (holder, _) = wait_one_holder(&lab, t.startup_bound() * 2 + ms(2000));
    wait_stable_holder(&lab, &holder, ms(500), ms(3000));
    let backup = if holder == "n1" { "n2" } else { "n1" };
    let (holder_ip, backup_ip, evil) = (lab.ip(&holder), lab.ip(backup), lab.ip("evil"));
    let sock = evil_udp(&lab, 0);
    let wrong = floatip::auth::Auth::new(floatip::auth::Key::new(vec![b'w'; 40]).unwrap());
    let mut sent = 0;
    let deadline = Instant::now() + ms(2000);
    let mut moved = Vec::new();
    let mut seq = 1;
    while Instant::now() < deadline {
        let stamp = wire::Stamp {
            time_ms: now_ms(),
            reply_to: None,
        };
        // As evil itself, and claiming to be the holder (source check) — plain and wrong-key.
        for node in [evil, holder_ip] {
            let resign = Message {
                role: Role::Backup,
                ..forged(Kind::Resign, node, Some(backup_ip), seq)
            };
            let announce = forged(Kind::Announce, node, None, seq + 1);
            for b in [
                wire::encode(&resign).to_vec(),
                wire::encode(&announce).to_vec(),
                wire::encode_authenticated(&resign, &stamp, &wrong).to_vec(),
                wire::encode_authenticated(&announce, &stamp, &wrong).to_vec(),
            ] {
                sock.send_to(&b, (BROADCAST, ECHO_PORT)).unwrap();
                sent += 1;
            }
        }
        seq += 2;
        std::thread::sleep(ms(50));
        let h = lab.holders(VIP);
        if h != [holder.clone()] {
            moved.push(h);
        }
    }
    println!(
        "FORGED sent={sent} holder={holder} samples_moved={}",
        moved.len()
    );
    assert!(
        moved.is_empty(),
        "forged messages moved the address: {moved:?}"
    );
    let status = status_json(&lab, backup);
    assert!(
        status["counters"]["auth_failures"].as_u64().unwrap() > 0,
        "{status}"
    );
}
