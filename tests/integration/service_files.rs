//! The files shipped beside the binary: systemd unit, launchd plist, default config.

use std::path::{Path, PathBuf};
use std::process::Command;

use floatip::config::RawSection;

const UNIT: &str = include_str!("../../systemd/floatip.service");
const PLIST: &str = "launchd/com.floatip.daemon.plist";
const MANIFEST: &str = include_str!("../../Cargo.toml");

/// `(section, key, value)` for every directive of a unit file, in order.
fn directives(unit: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            out.push((
                section.clone(),
                key.trim().to_string(),
                value.trim().to_string(),
            ));
        }
    }
    out
}

/// The value of a directive that must appear exactly once.
fn one(unit: &str, section: &str, key: &str) -> String {
    let found: Vec<String> = directives(unit)
        .into_iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "[{section}] {key}= should appear once, found {found:?}"
    );
    found.into_iter().next().unwrap()
}

#[test]
fn unit_has_the_key_directives() {
    assert_eq!(one(UNIT, "Service", "Type"), "notify");
    assert_eq!(one(UNIT, "Service", "NotifyAccess"), "main");
    assert_eq!(one(UNIT, "Service", "Restart"), "on-failure");
    assert_eq!(one(UNIT, "Service", "WatchdogSec"), "10");
    assert_eq!(
        one(UNIT, "Service", "ExecStart"),
        "/usr/sbin/floatip run --config /etc/floatip/gateway.yml"
    );
    assert_eq!(
        one(UNIT, "Service", "ExecStopPost"),
        "/usr/sbin/floatip release --config /etc/floatip/gateway.yml"
    );
    assert_eq!(
        one(UNIT, "Service", "ExecReload"),
        "/bin/kill -HUP $MAINPID"
    );
    assert_eq!(one(UNIT, "Service", "RuntimeDirectory"), "floatip");
    let caps = one(UNIT, "Service", "CapabilityBoundingSet");
    let caps: Vec<&str> = caps.split_whitespace().collect();
    assert!(
        caps.contains(&"CAP_NET_ADMIN") && caps.contains(&"CAP_NET_RAW"),
        "{caps:?}"
    );
    let families = one(UNIT, "Service", "RestrictAddressFamilies");
    for family in ["AF_INET", "AF_UNIX", "AF_PACKET", "AF_NETLINK"] {
        assert!(
            families.split_whitespace().any(|f| f == family),
            "{family} missing from {families}"
        );
    }
    assert_eq!(one(UNIT, "Install", "WantedBy"), "multi-user.target");
}

#[test]
fn status_socket_default_is_inside_the_runtime_directory() {
    let dir = format!("/run/{}/", one(UNIT, "Service", "RuntimeDirectory"));
    assert!(floatip::config::DEFAULT_STATUS_SOCKET.starts_with(&dir));
}

#[test]
fn packages_install_the_binary_where_the_unit_runs_it() {
    assert!(MANIFEST.contains(r#"["target/release/floatip", "usr/sbin/floatip", "755"]"#));
    assert!(MANIFEST.contains(r#"source = "target/release/floatip", dest = "/usr/sbin/floatip""#));
}

/// Copies the unit with the binary paths pointing at the freshly built binary, so
/// `systemd-analyze verify` finds an executable.
fn unit_for_verify() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floatip-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("floatip.service");
    std::fs::write(
        &path,
        UNIT.replace("/usr/sbin/floatip", env!("CARGO_BIN_EXE_floatip")),
    )
    .unwrap();
    path
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        floatip_lab::cannot_run(
            "unit_passes_systemd_analyze_verify",
            "systemd-analyze not installed (apt-get install systemd)",
        );
        return;
    }
    let path = unit_for_verify();
    // --man=no: the man page of Documentation= is not installed on a build host.
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    let text = floatip_lab::printed(&out);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{text}"
    );
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("floatip.service"))
        .collect();
    assert!(
        problems.is_empty(),
        "systemd-analyze verify complained:\n{}",
        problems.join("\n")
    );
}

#[test]
fn launchd_plist_runs_the_daemon_as_root() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(PLIST);
    let value = plist::Value::from_file(&path).unwrap();
    let dict = value.as_dictionary().expect("top level is a dictionary");
    let label = dict.get("Label").and_then(|v| v.as_string()).unwrap();
    assert_eq!(label, "com.floatip.daemon");
    assert_eq!(
        path.file_stem().unwrap(),
        label,
        "launchd expects the file named after the label"
    );
    assert!(
        label.split('.').count() >= 3,
        "Label {label} is not reverse-DNS"
    );
    let args: Vec<&str> = dict
        .get("ProgramArguments")
        .and_then(|v| v.as_array())
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "/usr/local/sbin/floatip",
            "run",
            "--config",
            "/usr/local/etc/floatip/gateway.yml"
        ]
    );
    assert_eq!(
        dict.get("RunAtLoad").and_then(|v| v.as_boolean()),
        Some(true)
    );
    assert!(dict.get("KeepAlive").is_some(), "KeepAlive missing");
    assert_eq!(
        dict.get("UserName").and_then(|v| v.as_string()),
        Some("root")
    );
    for key in ["StandardOutPath", "StandardErrorPath"] {
        assert_eq!(
            dict.get(key).and_then(|v| v.as_string()),
            Some("/var/log/floatip.log"),
            "{key}"
        );
    }
}

#[test]
fn shipped_config_parses_disabled_without_warnings() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/gateway.yml"),
    )
    .unwrap();
    let raw = RawSection::parse(&text, "packaging/gateway.yml").unwrap();
    assert!(!raw.enabled);
    assert!(raw.warnings.is_empty(), "{:?}", raw.warnings);
    assert_eq!(raw.priority, Some(100));
    assert_eq!(raw.echo_port, Some(floatip::config::DEFAULT_ECHO_PORT));
    assert_eq!(
        raw.status_socket.as_deref(),
        Some(floatip::config::DEFAULT_STATUS_SOCKET)
    );
}

#[test]
fn shipped_config_documents_every_key() {
    let text = include_str!("../../packaging/gateway.yml");
    for key in [
        "enabled:",
        "interface:",
        "ip:",
        "netmask:",
        "priority:",
        "preempt:",
        "preempt_delay_in_ms:",
        "garp_refresh_in_ms:",
        "status_socket:",
        "echo_port:",
        "echo:",
        "port:",
        "dial_timeout_in_ms:",
        "timeout_in_ms:",
        "interval_in_ms:",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().trim_start_matches('#').starts_with(key)),
            "{key} not in gateway.yml"
        );
    }
}

#[test]
fn shipped_config_examples_parse_when_uncommented() {
    let text = include_str!("../../packaging/gateway.yml");
    // Uncomment the `#key:` example blocks (two-space indented, directly under floating_ip).
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("  #") {
            Some(rest) if !rest.starts_with(' ') || rest.starts_with("  ") => format!("  {rest}"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let raw = RawSection::parse(&uncommented, "packaging/gateway.yml (uncommented)").unwrap();
    assert!(raw.warnings.is_empty(), "{:?}", raw.warnings);
    assert_eq!(raw.track.len(), 3, "the three track examples are read");
}
