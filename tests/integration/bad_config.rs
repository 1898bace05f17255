//! Bad configuration and environment: every case runs the real binary with
//! `run` and with `check` inside a lab namespace, and must fail with exit code non-zero,
//! exactly one error line that names the key or the fix, no panic, and the namespace's
//! addresses unchanged. Hostile interface names must be refused before any command runs.
//!
//! Run: `cargo nextest run --test integration -E 'test(bad_config::)' --no-capture` (as root).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use floatip_lab::floatip::masked;
use floatip_lab::Lab;

use crate::BIN;
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// How a case runs the binary.
#[derive(Clone, Copy, PartialEq)]
enum As {
    Root,
    /// `setpriv --reuid=nobody --regid=nogroup --clear-groups`
    Nobody,
    /// With this system program hidden: /dev/null mounted over it in a private mount namespace
    Without(&'static str),
}

struct Case {
    name: &'static str,
    /// The config file's contents; `None`: the path does not exist.
    yaml: Option<String>,
    who: As,
    /// Every one of these must be in the error line.
    expect: &'static [&'static str],
}

fn case(name: &'static str, yaml: &str, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        yaml: Some(yaml.to_string()),
        who: As::Root,
        expect,
    }
}

/// `floating_ip` enabled with `tail` (lines indented by two) added.
fn on(tail: &str) -> String {
    format!("other_section:\n  x: 1\nfloating_ip:\n  enabled: true\n{tail}")
}

fn write_mode(dir: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn which(cmd: &str) -> PathBuf {
    for d in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(d).join(cmd);
        if p.exists() {
            return p;
        }
    }
    panic!("{cmd} not installed");
}

fn addresses(lab: &Lab) -> String {
    lab.sh_ok("n1", &["ip", "-4", "-o", "addr", "show"])
}

/// The error lines of a run's stderr (env_logger's ` ERROR ` level).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(" ERROR ")).collect()
}

fn cases(dir: &Path) -> Vec<Case> {
    let key_dir = dir.join("keys");
    std::fs::create_dir_all(&key_dir).unwrap();
    let k = |name: &str, contents: &str, mode: u32| {
        write_mode(&key_dir, name, contents, mode)
            .display()
            .to_string()
    };
    let good_key = k("good", &format!("{KEY}\n"), 0o600);
    let world = k("world", &format!("{KEY}\n"), 0o644);
    let group = k("group", &format!("{KEY}\n"), 0o640);
    let empty = k("empty", "\n", 0o600);
    let short = k("short", "abc123\n", 0o600);
    let missing = key_dir.join("missing").display().to_string();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let chmod_world: &'static [&'static str] = Box::leak(
        vec![
            "floating_ip.auth.key_file",
            leak(format!("chmod 600 {world}")),
        ]
        .into_boxed_slice(),
    );
    let chmod_group: &'static [&'static str] = Box::leak(
        vec![
            "floating_ip.auth.key_file",
            leak(format!("chmod 600 {group}")),
        ]
        .into_boxed_slice(),
    );
    let valid = on("  interface: eth0\n  echo: {interval_in_ms: 100, timeout_in_ms: 300}\n");

    vec![
        // YAML syntax
        case(
            "unclosed flow list",
            "floating_ip: [1\n",
            &["not valid YAML"],
        ),
        case(
            "duplicate key",
            "floating_ip:\n  enabled: true\n  enabled: false\n",
            &["not valid YAML"],
        ),
        case(
            "tab indentation",
            "floating_ip:\n\tenabled: true\n",
            &["not valid YAML"],
        ),
        case(
            "unclosed quote",
            "floating_ip:\n  enabled: true\n  interface: \"eth0\n",
            &["not valid YAML"],
        ),
        case(
            "top level is a list",
            "- a\n- b\n",
            &["top level must be a mapping"],
        ),
        // missing section
        case(
            "no floating_ip section",
            "elasticsearch:\n  hosts: [a]\n",
            &["floating_ip", "section missing"],
        ),
        case("empty file", "", &["floating_ip", "section missing"]),
        case(
            "floating_ip is a scalar",
            "floating_ip: true\n",
            &["floating_ip", "expected a mapping"],
        ),
        // wrong types
        case(
            "enabled: maybe",
            "floating_ip:\n  enabled: maybe\n",
            &["floating_ip.enabled", "true or false"],
        ),
        case(
            "port is a string",
            &on("  echo:\n    port: abc\n"),
            &["floating_ip.echo.port"],
        ),
        case(
            "ip is a list of numbers",
            &on("  ip: [1, 2]\n"),
            &["floating_ip.ip", "expected an address, got a number"],
        ),
        case(
            "priority is a string",
            &on("  priority: high\n"),
            &["floating_ip.priority"],
        ),
        case(
            "echo is a number",
            &on("  echo: 5\n"),
            &["floating_ip.echo", "mapping"],
        ),
        case(
            "preempt: sometimes",
            &on("  preempt: sometimes\n"),
            &["floating_ip.preempt"],
        ),
        // out of range
        case(
            "port 70000",
            &on("  echo:\n    port: 70000\n"),
            &["floating_ip.echo.port", "out of range"],
        ),
        case(
            "port 0",
            &on("  echo_port: 0\n"),
            &["floating_ip.echo_port", "out of range"],
        ),
        case(
            "priority 0",
            &on("  priority: 0\n"),
            &["floating_ip.priority", "out of range"],
        ),
        case(
            "priority 255",
            &on("  priority: 255\n"),
            &["floating_ip.priority", "out of range"],
        ),
        case(
            "timeout 0",
            &on("  echo:\n    timeout_in_ms: 0\n"),
            &["floating_ip.echo.timeout_in_ms"],
        ),
        case(
            "interval 100000000",
            &on("  echo:\n    interval_in_ms: 100000000\n"),
            &["floating_ip.echo.interval_in_ms"],
        ),
        case(
            "timeout < 2 intervals",
            &on("  echo: {interval_in_ms: 1000, timeout_in_ms: 1500}\n"),
            &["floating_ip.echo.timeout_in_ms", "twice"],
        ),
        case(
            "two ports disagree",
            &on("  echo_port: 1000\n  echo:\n    port: 2000\n"),
            &["floating_ip.echo.port", "contradicts"],
        ),
        // addresses
        case(
            "ip not an address",
            &on("  ip: 192.0.2.300\n"),
            &["floating_ip.ip", "not an IPv4"],
        ),
        case(
            "ip outside the subnet",
            &on("  ip: 198.51.100.7\n"),
            &["floating_ip.ip", "outside"],
        ),
        case(
            "ip is the broadcast address",
            &on("  ip: 192.0.2.255\n"),
            &["floating_ip.ip", "broadcast"],
        ),
        case(
            "ip is the network address",
            &on("  ip: 192.0.2.0\n"),
            &["floating_ip.ip", "network"],
        ),
        case(
            "ip is the node's own address",
            &on("  ip: 192.0.2.11\n"),
            &["floating_ip.ip", "own address"],
        ),
        case(
            "IPv6 address with a netmask",
            &on("  ip: 2001:db8::234/64\n  netmask: 255.255.255.0\n"),
            &[
                "floating_ip.netmask",
                "255.255.255.0 applies to IPv4 addresses only",
            ],
        ),
        case(
            "IPv6 prefix out of range",
            &on("  ip: [192.0.2.234, \"2001:db8::234/129\"]\n"),
            &[
                "floating_ip.ip",
                "2001:db8::234/129: prefix /129 is out of range 1..=128",
            ],
        ),
        case(
            "link-local floating address",
            &on("  ip: [192.0.2.234, \"fe80::234\"]\n"),
            &["floating_ip.ip", "fe80::234 is link-local"],
        ),
        case(
            "multicast floating address",
            &on("  ip: [192.0.2.234, \"ff02::1:ff00:234\"]\n"),
            &["floating_ip.ip", "ff02::1:ff00:234 is multicast"],
        ),
        case(
            "an address listed twice",
            &on("  ip: [192.0.2.234, 192.0.2.234]\n"),
            &["floating_ip.ip", "192.0.2.234 is listed twice"],
        ),
        case(
            "second IPv4 address outside the subnet",
            &on("  ip: [192.0.2.234, 198.51.100.7]\n"),
            &[
                "floating_ip.ip",
                "198.51.100.7 is outside eth0's subnet 192.0.2.0/24",
            ],
        ),
        case(
            "IPv6 address where the interface has no IPv6 prefix",
            &on("  ip: [192.0.2.234, \"2001:db8::234\"]\n"),
            &["floating_ip.ip", "eth0 has no IPv6 address of its own"],
        ),
        case(
            "IPv6-only group where the interface has no IPv6 prefix",
            &on("  ip: 2001:db8::234\n"),
            &[
                "floating_ip.ip",
                "2001:db8::234: eth0 has no IPv6 address of its own",
            ],
        ),
        case(
            "netmask not contiguous",
            &on("  netmask: 255.0.255.0\n"),
            &["floating_ip.netmask", "contiguous"],
        ),
        // interfaces (shell metacharacters: refused before anything runs)
        case(
            "interface ;touch",
            &on("  interface: 'eth0;touch /tmp/pwned-floatip'\n"),
            &["floating_ip.interface", "not a valid interface"],
        ),
        case(
            "interface $(reboot)",
            &on("  interface: '$(reboot)'\n"),
            &["floating_ip.interface", "not a valid interface"],
        ),
        case(
            "interface backticks",
            &on("  interface: '`touch /tmp/pwned-floatip`'\n"),
            &["floating_ip.interface", "not a valid interface"],
        ),
        case(
            "interface && ",
            &on("  interface: 'eth0 && touch /tmp/pwned-floatip'\n"),
            &["floating_ip.interface", "not a valid interface"],
        ),
        case(
            "interface | pipe",
            &on("  interface: 'eth0|sh'\n"),
            &["floating_ip.interface", "not a valid interface"],
        ),
        case(
            "interface absent",
            &on("  interface: eth9\n"),
            &["floating_ip.interface", "eth9 not found", "available"],
        ),
        // unreadable file
        Case {
            name: "config file missing",
            yaml: None,
            who: As::Root,
            expect: &["cannot read", "No such file"],
        },
        Case {
            name: "config unreadable by nobody",
            yaml: Some("0600".into()),
            who: As::Nobody,
            expect: &["cannot read", "Permission denied"],
        },
        // keys
        case(
            "key_file missing",
            &on(&format!("  auth: {{key_file: {missing}}}\n")),
            &["floating_ip.auth.key_file", "head -c 32 /dev/urandom"],
        ),
        case(
            "key_file world-readable",
            &on(&format!("  auth: {{key_file: {world}}}\n")),
            chmod_world,
        ),
        case(
            "key_file group-readable",
            &on(&format!("  auth: {{key_file: {group}}}\n")),
            chmod_group,
        ),
        case(
            "key_file empty",
            &on(&format!("  auth: {{key_file: {empty}}}\n")),
            &["floating_ip.auth.key_file", "is empty"],
        ),
        case(
            "key_file too short",
            &on(&format!("  auth: {{key_file: {short}}}\n")),
            &["floating_ip.auth.key_file", "too short"],
        ),
        case(
            "key_file is a folder",
            &on(&format!("  auth: {{key_file: {}}}\n", key_dir.display())),
            &["floating_ip.auth.key_file", "not a regular file"],
        ),
        case(
            "previous_key_file world-readable",
            &on(&format!(
                "  auth: {{key_file: {good_key}, previous_key_file: {world}}}\n"
            )),
            &["floating_ip.auth.previous_key_file", "chmod 600"],
        ),
        case(
            "inline key too short",
            &on("  auth: {key: hunter2}\n"),
            &["floating_ip.auth.key", "too short"],
        ),
        case(
            "auth without a key",
            &on("  auth: {max_clock_skew_in_ms: 5000}\n"),
            &["floating_ip.auth.key_file", "missing"],
        ),
        case(
            "key and key_file",
            &on(&format!("  auth: {{key_file: {good_key}, key: {KEY}}}\n")),
            &["floating_ip.auth.key", "not both"],
        ),
        case(
            "skew out of range",
            &on(&format!(
                "  auth: {{key_file: {good_key}, max_clock_skew_in_ms: 5}}\n"
            )),
            &["floating_ip.auth.max_clock_skew_in_ms", "out of range"],
        ),
        case(
            "auth is a string",
            &on("  auth: secret\n"),
            &["floating_ip.auth", "mapping"],
        ),
        // environment
        Case {
            name: "not root",
            yaml: Some(valid.clone()),
            who: As::Nobody,
            expect: &["must run as root", "sudo"],
        },
        Case {
            name: "no ifconfig",
            yaml: Some(valid.clone()),
            who: As::Without("ifconfig"),
            expect: &[
                "`ifconfig` not found in /usr/sbin, /sbin, /usr/bin, /bin",
                "net-tools",
            ],
        },
        Case {
            name: "no ip",
            yaml: Some(valid.clone()),
            who: As::Without("ip"),
            expect: &["`ip` not found", "iproute2"],
        },
        Case {
            name: "no ping",
            yaml: Some(valid),
            who: As::Without("ping"),
            expect: &["`ping` not found", "iputils-ping"],
        },
    ]
}

#[test]
fn every_bad_input_fails_cleanly_with_one_line_naming_the_key() {
    let Some(lab) = Lab::new("bad_input", &["n1"]) else {
        return;
    };
    let dir = lab.dir().to_path_buf();
    // The nobody cases need to reach the config files.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = std::fs::remove_file("/tmp/pwned-floatip");
    let before = addresses(&lab);
    let cases = cases(&dir);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut runs = 0;
    for (i, c) in cases.iter().enumerate() {
        let cfg = dir.join(format!("case{i}.yml"));
        match &c.yaml {
            None => {}
            Some(mode) if mode == "0600" => {
                write_mode(&dir, &format!("case{i}.yml"), &on(""), 0o600);
            }
            Some(y) => {
                write_mode(&dir, &format!("case{i}.yml"), y, 0o644);
            }
        }
        let cfg = cfg.display().to_string();
        for sub in ["run", "check"] {
            runs += 1;
            let hidden;
            let mut argv: Vec<&str> = match c.who {
                As::Root => vec![],
                As::Nobody => vec![
                    "setpriv",
                    "--reuid=nobody",
                    "--regid=nogroup",
                    "--clear-groups",
                ],
                As::Without(tool) => {
                    hidden = which(tool).canonicalize().unwrap().display().to_string();
                    masked(&[("/dev/null", hidden.as_str())])
                }
            };
            argv.extend([BIN, sub, "-c", &cfg]);
            let out = lab.run("n1", &argv);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let errors = error_lines(&stderr);
            let line = errors.first().copied().unwrap_or("");
            let mut problems = Vec::new();
            // sysexits: 77 not permitted, 69 a program missing, 78 everything about the file.
            let code = match (c.name, &c.who) {
                ("not root", _) => 77,
                (_, As::Without(_)) => 69,
                _ => 78,
            };
            if out.status.code() != Some(code) {
                problems.push(format!("exit code {:?}, not {code}", out.status.code()));
            }
            if errors.len() != 1 {
                problems.push(format!("{} error lines", errors.len()));
            }
            for want in c.expect {
                if !line.contains(want) {
                    problems.push(format!("error line lacks {want:?}"));
                }
            }
            if stderr.contains("panicked") {
                problems.push("panic".into());
            }
            println!(
                "{:<34} {:<5} exit {:?}: {}",
                c.name,
                sub,
                out.status.code(),
                line.split("] ").nth(1).unwrap_or(line)
            );
            if !problems.is_empty() {
                failures.push(format!(
                    "{} ({sub}): {}\n  stderr: {stderr}",
                    c.name,
                    problems.join(", ")
                ));
            }
        }
    }
    let after = addresses(&lab);
    println!(
        "BAD_INPUT cases={} runs={runs} failures={}",
        cases.len(),
        failures.len()
    );
    assert_eq!(before, after, "addresses changed");
    assert!(
        !Path::new("/tmp/pwned-floatip").exists(),
        "a hostile interface name ran a command"
    );
    assert!(
        failures.is_empty(),
        "{} failing runs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A hostile interface name is refused before any external command runs: the system's
/// `ifconfig`, `ip` and `ping` (and PATH) are spies that record every call.
#[test]
fn hostile_interface_names_run_no_command() {
    let Some(lab) = Lab::new("injection", &["n1"]) else {
        return;
    };
    let dir = lab.dir().to_path_buf();
    let spies = dir.join("spies");
    std::fs::create_dir_all(&spies).unwrap();
    let calls = dir.join("calls");
    for tool in ["ifconfig", "ip", "ping", "sh", "arping"] {
        write_mode(
            &spies,
            tool,
            &format!("#!/bin/sh\necho {tool} \"$@\" >> {}\n", calls.display()),
            0o755,
        );
    }
    let binds: Vec<(String, String)> = ["ifconfig", "ip", "ping"]
        .iter()
        .map(|t| {
            (
                spies.join(t).display().to_string(),
                which(t).canonicalize().unwrap().display().to_string(),
            )
        })
        .collect();
    let binds: Vec<(&str, &str)> = binds
        .iter()
        .map(|(s, t)| (s.as_str(), t.as_str()))
        .collect();
    let pwned = dir.join("pwned");
    let before = addresses(&lab);
    for name in [
        format!("eth0;touch {}", pwned.display()),
        format!("$(touch {})", pwned.display()),
        "$(reboot)".to_string(),
        format!("`touch {}`", pwned.display()),
        format!("eth0 && touch {}", pwned.display()),
        "eth0\nrm -rf /".to_string(),
        "../../etc".to_string(),
        "-a".to_string(),
    ] {
        let yaml = format!(
            "floating_ip:\n  enabled: true\n  interface: {}\n",
            serde_json::to_string(&name).unwrap()
        );
        let cfg = lab.write_file("inj.yml", &yaml);
        for sub in ["run", "check", "release"] {
            let path = format!("PATH={}", spies.display());
            let mut argv = masked(&binds);
            argv.extend(["env", "-i", &path, BIN, sub, "-c", cfg.to_str().unwrap()]);
            let out = lab.run("n1", &argv);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{name:?} {sub}: exit 0");
            assert!(
                stderr.contains("floating_ip.interface"),
                "{name:?} {sub}: {stderr}"
            );
        }
    }
    assert!(!pwned.exists(), "a command ran");
    assert!(
        !calls.exists(),
        "external commands ran: {}",
        std::fs::read_to_string(&calls).unwrap_or_default()
    );
    assert_eq!(before, addresses(&lab));
}
