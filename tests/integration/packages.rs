//! Builds the .deb and .rpm with `mk/packaging.mk`, installs the .deb and looks inside
//! both. Slow, needs root, dpkg and rpm, and changes the host: runs only with
//! `FLOATIP_PACKAGE_TESTS=1` (CI sets it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Both tests run `make`, which rebuilds the same release binary and assets.
static BUILD: Mutex<()> = Mutex::new(());

fn enabled() -> bool {
    if std::env::var("FLOATIP_PACKAGE_TESTS").as_deref() == Ok("1") {
        return true;
    }
    println!("SKIP: package tests build and install packages on this host; set FLOATIP_PACKAGE_TESTS=1 (needs root, dpkg, rpm)");
    false
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| manifest_dir().join("target"), PathBuf::from)
}

/// Runs a command, panicking with its output unless it succeeds.
fn run(program: &str, args: &[&str]) -> String {
    let out = output(program, args);
    let text = describe(&out);
    assert!(
        out.status.success(),
        "{program} {} failed:\n{text}",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(manifest_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `make -f mk/packaging.mk TARGET` and returns the newest file of `dir` with `ext`.
fn build_package(target: &str, dir: &str, ext: &str) -> PathBuf {
    let _lock = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    run("make", &["-f", "mk/packaging.mk", target]);
    let dir = target_dir().join(dir);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .max_by_key(|p| p.metadata().unwrap().modified().unwrap())
        .unwrap_or_else(|| panic!("no .{ext} in {}", dir.display()))
}

fn assert_lists(listing: &str, paths: &[&str]) {
    for path in paths {
        assert!(
            listing.lines().any(|l| l.trim() == *path),
            "{path} missing from:\n{listing}"
        );
    }
}

/// The installed package; purged on drop, so a failed assertion leaves nothing behind.
struct Installed;

impl Installed {
    fn deb(path: &Path) -> Installed {
        assert!(
            output("dpkg", &["-s", "floatip"]).status.code() != Some(0),
            "floatip is already installed; remove it first"
        );
        assert!(
            !Path::new("/etc/floatip").exists(),
            "/etc/floatip exists; the test would overwrite or read it"
        );
        let guard = Installed;
        run("dpkg", &["-i", path.to_str().unwrap()]);
        guard
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let out = output("dpkg", &["--purge", "floatip"]);
        if !out.status.success() {
            eprintln!("teardown: dpkg --purge floatip failed:\n{}", describe(&out));
        }
    }
}

#[test]
fn deb_installs_runs_and_purges() {
    if !enabled() {
        return;
    }
    let deb = build_package("deb", "debian", "deb");
    let depends = run("dpkg-deb", &["-f", deb.to_str().unwrap(), "Depends"]);
    assert!(
        depends.contains("net-tools") && depends.contains("iputils-ping"),
        "Depends: {depends}"
    );

    let installed = Installed::deb(&deb);
    let version = run("/usr/sbin/floatip", &["--version"]);
    assert!(
        version.starts_with(&format!("floatip {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let check = run("/usr/sbin/floatip", &["check"]);
    assert!(
        check.contains("disabled"),
        "the shipped config must be disabled: {check}"
    );

    let files = run("dpkg", &["-L", "floatip"]);
    assert_lists(
        &files,
        &[
            "/usr/sbin/floatip",
            "/usr/lib/systemd/system/floatip.service",
            "/etc/floatip/gateway.yml",
            "/usr/share/man/man8/floatip.8.gz",
            "/usr/share/man/man8/floatip-run.8.gz",
            "/usr/share/bash-completion/completions/floatip",
            "/usr/share/zsh/vendor-completions/_floatip",
            "/usr/share/fish/vendor_completions.d/floatip.fish",
        ],
    );
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", "floatip"]);
    assert!(
        conffiles.contains("/etc/floatip/gateway.yml"),
        "not a conffile: {conffiles}"
    );
    // Removal must stop the service while the binary exists, so ExecStopPost releases the address.
    let prerm =
        std::fs::read_to_string("/var/lib/dpkg/info/floatip.prerm").expect("no prerm script");
    assert!(
        prerm.contains("stop floatip.service"),
        "prerm does not stop the service:\n{prerm}"
    );
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/floatip.service").unwrap();
    assert_eq!(unit, include_str!("../../systemd/floatip.service"));

    drop(installed);
    assert!(
        output("dpkg", &["-s", "floatip"]).status.code() != Some(0),
        "still installed after purge"
    );
    assert!(
        !Path::new("/usr/sbin/floatip").exists() && !Path::new("/etc/floatip/gateway.yml").exists()
    );
}

#[test]
fn rpm_lists_files_and_requirements() {
    if !enabled() {
        return;
    }
    let rpm = build_package("rpm", "generate-rpm", "rpm");
    let rpm = rpm.to_str().unwrap();
    assert_lists(
        &run("rpm", &["-qlp", rpm]),
        &[
            "/usr/sbin/floatip",
            "/usr/lib/systemd/system/floatip.service",
            "/etc/floatip/gateway.yml",
            "/usr/share/man/man8/floatip.8",
            "/usr/share/bash-completion/completions/floatip",
        ],
    );
    assert_lists(&run("rpm", &["-qcp", rpm]), &["/etc/floatip/gateway.yml"]);
    let requires = run("rpm", &["-qRp", rpm]);
    assert!(
        requires.lines().any(|l| l.trim() == "net-tools"),
        "{requires}"
    );
    assert!(
        requires.lines().any(|l| l.trim() == "iputils"),
        "{requires}"
    );
}
