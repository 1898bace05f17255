//! What floatip trusts on its own host: the programs root runs (system directories only,
//! never PATH), the files that decide what it does (refused when others can change them),
//! the keys of its config (a typo is an error for `check`, a warning for `run`), and the
//! programs it starts (nothing of theirs outlives a run).
//!
//! The namespace tests need root (they skip otherwise, and fail in CI); the leak test runs
//! in this process.
//!
//! Run: `cargo nextest run --test integration -E 'test(local_trust::)'`

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use floatip_lab::floatip::*;
use floatip_lab::Lab;

use crate::BIN;

/// The leak test counts this process's threads and fds: no other test of this file runs
/// beside it, even under `cargo test`'s threads.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_mode(lab: &Lab, name: &str, contents: &str, mode: u32) -> PathBuf {
    let p = lab.write_file(name, contents);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// `floatip SUB -c cfg` in n1: (exit ok, stdout, stderr).
fn floatip(lab: &Lab, sub: &str, cfg: &Path) -> (bool, String, String) {
    let out = lab.run("n1", &[BIN, sub, "-c", path_str(cfg)]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn addresses(lab: &Lab) -> String {
    lab.sh_ok("n1", &["ip", "-4", "-o", "addr", "show"])
}

/// A config that names programs root would run, refused by `check` and by `run` when
/// someone else could change it or them: exit non-zero, one error line with the fix,
/// nothing run, no address added.
#[test]
fn files_others_can_change_are_refused_by_check_and_run() {
    let _one = serial();
    let Some(lab) = Lab::new("trust", &["n1"]) else {
        return;
    };
    let ran = lab.dir().join("hook-ran");
    let hook = write_mode(
        &lab,
        "hook.sh",
        &format!("#!/bin/sh\ntouch {}\n", ran.display()),
        0o755,
    );
    let loose_hook = write_mode(
        &lab,
        "loose-hook.sh",
        &format!("#!/bin/sh\ntouch {}\n", ran.display()),
        0o775,
    );
    let with_hook = |h: &Path| {
        timed_config(
            Timing::FAST,
            &[&format!("notify: {{any: [{}]}}", path_str(h))],
        )
    };
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let inline_key = timed_config(Timing::FAST, &[&format!("auth: {{key: {key}}}")]);

    let group_writable = write_mode(&lab, "group-writable.yml", &with_hook(&hook), 0o664);
    let world_writable = write_mode(&lab, "world-writable.yml", &with_hook(&hook), 0o646);
    let foreign = write_mode(&lab, "foreign.yml", &with_hook(&hook), 0o644);
    std::os::unix::fs::chown(&foreign, Some(65534), None).unwrap();
    let hook_writable = write_mode(&lab, "hook-writable.yml", &with_hook(&loose_hook), 0o644);
    let key_readable = write_mode(&lab, "key-readable.yml", &inline_key, 0o644);
    let f = |p: &Path| path_str(p).to_string();
    let cases: Vec<(&Path, Vec<String>)> = vec![
        (
            &group_writable,
            vec![
                format!("{}: refused", f(&group_writable)),
                format!("mode 0664); run: chmod go-w {}", f(&group_writable)),
            ],
        ),
        (
            &world_writable,
            vec![format!("run: chmod go-w {}", f(&world_writable))],
        ),
        (
            &foreign,
            vec![
                "owned by uid 65534".into(),
                format!("run: chown root {}", f(&foreign)),
            ],
        ),
        (
            &hook_writable,
            vec![
                "floating_ip.notify.any[0]".into(),
                "runs as root".into(),
                format!("run: chmod go-w {}", f(&loose_hook)),
            ],
        ),
        (
            &key_readable,
            vec![
                "floating_ip.auth.key".into(),
                format!("run: chmod 600 {}", f(&key_readable)),
                "key_file".into(),
            ],
        ),
    ];
    let before = addresses(&lab);
    for (cfg, expect) in &cases {
        for sub in ["check", "run"] {
            let t0 = Instant::now();
            let (ok, _, stderr) = floatip(&lab, sub, cfg);
            let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
            assert!(!ok, "{sub} {}: exit 0: {stderr}", cfg.display());
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{sub} did not stop at once"
            );
            assert_eq!(errors.len(), 1, "{sub} {}: {stderr}", cfg.display());
            for want in expect {
                assert!(
                    errors[0].contains(want.as_str()),
                    "{sub} {}: lacks {want:?}: {}",
                    cfg.display(),
                    errors[0]
                );
            }
        }
    }
    assert!(!ran.exists(), "a hook ran");
    assert_eq!(before, addresses(&lab), "an address changed");

    // The same files, made safe, pass.
    for cfg in [&group_writable, &world_writable] {
        std::fs::set_permissions(cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&key_readable, std::fs::Permissions::from_mode(0o600)).unwrap();
    for cfg in [&group_writable, &world_writable, &key_readable] {
        let (ok, stdout, stderr) = floatip(&lab, "check", cfg);
        assert!(
            ok && stdout.ends_with("ok\n"),
            "{}: {stdout}{stderr}",
            cfg.display()
        );
    }
}

/// A misspelt key fails `check` with one line naming the key, where it is and the closest
/// known key; `run` logs the same line as a warning and runs. `check` also says what an
/// unauthenticated group trusts.
#[test]
fn typos_fail_check_and_warn_in_run() {
    let _one = serial();
    let Some(lab) = Lab::new("typos", &["n1"]) else {
        return;
    };
    let typos = [
        (
            "preemt: true",
            "floating_ip.preemt (did you mean floating_ip.preempt?)",
        ),
        (
            "echo: {intervall_in_ms: 5}",
            "floating_ip.echo.intervall_in_ms (did you mean floating_ip.echo.interval_in_ms?)",
        ),
        (
            "track: [{tcp: '127.0.0.1:22', falls: 2}]",
            "floating_ip.track[0].falls (did you mean floating_ip.track[0].fall?)",
        ),
        (
            "notify: {mastr: [/bin/true]}",
            "floating_ip.notify.mastr (did you mean floating_ip.notify.master?)",
        ),
        (
            "auth: {key_fil: /etc/floatip/key, key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}",
            "floating_ip.auth.key_fil (did you mean floating_ip.auth.key_file?)",
        ),
    ];
    for (i, (line, named)) in typos.iter().enumerate() {
        let cfg = write_mode(&lab, &format!("typo{i}.yml"), &zero_config(&[line]), 0o600);
        let (ok, _, stderr) = floatip(&lab, "check", &cfg);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
        assert!(!ok, "check passed with {line:?}: {stderr}");
        assert_eq!(errors.len(), 1, "{stderr}");
        let want = format!("{}: unknown key {named}", path_str(&cfg));
        assert!(
            errors[0].ends_with(&want),
            "{line:?}: {} lacks {want:?}",
            errors[0]
        );
    }
    // A typo of `enabled` in a disabled file is the typo that matters most.
    let cfg = lab.write_file("disabled.yml", "floating_ip:\n  enabeld: true\n");
    let (ok, _, stderr) = floatip(&lab, "check", &cfg);
    assert!(
        !ok && stderr.contains("floating_ip.enabeld (did you mean floating_ip.enabled?)"),
        "{stderr}"
    );
    // Sections outside floating_ip are not read.
    let cfg = lab.write_file(
        "other.yml",
        &format!("other:\n  preemt: 1\n{}", timed_config(Timing::FAST, &[])),
    );
    let (ok, stdout, stderr) = floatip(&lab, "check", &cfg);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("unauthenticated: any host that can reach eth0 port 61111 can move the address; set floating_ip.auth.key_file"),
        "{stdout}"
    );

    let cfg = lab.write_file(
        "run-typo.yml",
        &timed_config(Timing::FAST, &["preemt: true"]),
    );
    let daemon = start(&lab, BIN, "n1", &cfg);
    let warned = format!(
        "{}: unknown key floating_ip.preemt (did you mean floating_ip.preempt?)",
        path_str(&cfg)
    );
    assert!(
        daemon.wait_log("BACKUP -> MASTER", Duration::from_secs(10)),
        "run did not go on: {}",
        daemon.log()
    );
    assert!(
        daemon
            .log()
            .lines()
            .any(|l| l.contains(" WARN ") && l.ends_with(&warned)),
        "no warning {warned:?}: {}",
        daemon.log()
    );
    daemon.stop();
}

/// Root runs `ifconfig`, `ip` and `ping` from the system directories: spies first in
/// PATH are never called, and the real programs do the work.
#[test]
fn root_ignores_path() {
    let _one = serial();
    let Some(lab) = Lab::new("nopath", &["n1"]) else {
        return;
    };
    let spies = lab.dir().join("spies");
    std::fs::create_dir_all(&spies).unwrap();
    let calls = lab.dir().join("calls");
    for tool in ["ifconfig", "ip", "ping"] {
        write_mode(
            &lab,
            &format!("spies/{tool}"),
            &format!(
                "#!/bin/sh\necho {tool} \"$@\" >> {}\nexit 0\n",
                calls.display()
            ),
            0o755,
        );
    }
    let cfg = lab.write_file("n1.yml", &timed_config(Timing::FAST, &[]));
    let path = format!("PATH={}", spies.display());
    let with_spies =
        |sub: &str| lab.run("n1", &["env", "-i", &path, BIN, sub, "-c", path_str(&cfg)]);
    let check = with_spies("check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("no answer to ping (free)"),
        "the real ping ran"
    );
    // An alias copy (removed by ifconfig) and an unlabeled one (removed by ip).
    add_alias_copy(&lab, "n1");
    let release = with_spies("release");
    assert!(
        release.status.success(),
        "{}",
        String::from_utf8_lossy(&release.stderr)
    );
    lab.sh_ok(
        "n1",
        &["ip", "addr", "add", "192.0.2.234/24", "dev", "eth0"],
    );
    let release = with_spies("release");
    assert!(
        release.status.success(),
        "{}",
        String::from_utf8_lossy(&release.stderr)
    );
    assert!(
        !addresses(&lab).contains("192.0.2.234"),
        "the real ifconfig and ip removed it: {}",
        addresses(&lab)
    );
    assert!(
        !calls.exists(),
        "programs from PATH ran: {}",
        std::fs::read_to_string(&calls).unwrap_or_default()
    );
}

/// A hung `ifconfig` is killed at its timeout and the take-over fails into FAULT with the
/// command in the log line; the loop goes on (a SIGTERM is answered at once).
#[test]
fn a_hung_ifconfig_puts_the_node_in_fault() {
    let _one = serial();
    let Some(lab) = Lab::new("hungcmd", &["n1"]) else {
        return;
    };
    let hang = write_mode(&lab, "hang.sh", "#!/bin/sh\nexec sleep 30\n", 0o755);
    let ifconfig = floatip::net::Tool::Ifconfig
        .locate()
        .expect("ifconfig installed")
        .canonicalize()
        .unwrap();
    let cfg = lab.write_file("n1.yml", &timed_config(Timing::FAST, &[]));
    let mut argv = masked(&[(path_str(&hang), path_str(&ifconfig))]);
    argv.extend([BIN, "-v", "run", "-c", path_str(&cfg)]);
    let daemon = lab.spawn("n1", &argv, &[]);
    let fault = "MASTER -> FAULT: action failed: `ifconfig eth0:234 192.0.2.234 netmask 255.255.255.0 up` failed: timed out after 2000 ms, killed";
    assert!(
        daemon.wait_log(fault, Duration::from_secs(10)),
        "no {fault:?} in: {}",
        daemon.log()
    );
    let t0 = Instant::now();
    daemon.stop();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t0.elapsed()
    );
    assert!(!addresses(&lab).contains("192.0.2.234"));
}

/// Every system program floatip needs on Linux is a dependency of its packages.
#[test]
fn packages_depend_on_every_system_program() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let depends = manifest
        .lines()
        .find(|l| l.starts_with("depends = "))
        .expect("deb depends");
    let requires = manifest
        .split("[package.metadata.generate-rpm.requires]")
        .nth(1)
        .expect("rpm requires");
    let rpm_name = |deb: &'static str| -> &'static str {
        match deb {
            "iproute2" => "iproute",
            "iputils-ping" => "iputils",
            other => other,
        }
    };
    for tool in floatip::net::Tool::required(floatip::net::Os::Linux) {
        assert!(
            depends.contains(tool.package()),
            "{} ({}) missing from {depends}",
            tool.name(),
            tool.package()
        );
        let rpm = rpm_name(tool.package());
        assert!(
            requires
                .lines()
                .any(|l| l.starts_with(&format!("{rpm} = "))),
            "{rpm} missing from the rpm requires"
        );
    }
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// A live process (a zombie is dead: only its parent's reaping is left).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// A hook that leaves a sleeping grandchild holding its output pipes, run 1,000 times:
/// every run returns promptly, every grandchild is killed, and this process has the same
/// fds and threads after as before.
#[test]
fn a_hook_leaving_a_sleeping_grandchild_leaks_nothing() {
    let _one = serial();
    let hook: Vec<String> = ["/bin/sh", "-c", "sleep 600 & echo $!"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let once = || {
        let ran = floatip::exec::run(&hook, &[], Duration::from_secs(5));
        assert!(ran.success(), "{:?}", ran.exit);
        assert!(
            ran.took < Duration::from_secs(1),
            "a run took {:?}",
            ran.took
        );
        let pid: i32 = ran
            .output
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid in {:?}", ran.output));
        let deadline = Instant::now() + Duration::from_secs(2);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!alive(pid), "grandchild {pid} outlived its run");
    };
    once(); // lazily created statics are not leaks
    let (fds, threads) = (count("/proc/self/fd"), count("/proc/self/task"));
    let t0 = Instant::now();
    for _ in 0..1000 {
        once();
    }
    let took = t0.elapsed();
    let (fds_after, threads_after) = (count("/proc/self/fd"), count("/proc/self/task"));
    println!("MEASURED 1000 hook runs with a grandchild in {} ms; fds {fds} -> {fds_after}, threads {threads} -> {threads_after}", took.as_millis());
    assert_eq!(fds_after, fds, "fds leaked");
    assert_eq!(threads_after, threads, "threads leaked");
}
