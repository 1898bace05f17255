//! Real etcd members in the namespace lab: `etcd` (Debian package `etcd-server`) started
//! on lab nodes (192.0.2.x, port 2379 for clients, 2380 for peers). Data dirs live on
//! tmpfs (`/dev/shm`), so a loaded disk cannot slow etcd's fsyncs into the tests' bounds.
//! Members are lab programs, killed by PID; the cluster removes its data on drop.
//!
//! A test that cannot run (not root, no `ip`, no `etcd`) prints one `SKIP:` line, except
//! under `CI=true` or `FLOATIP_REQUIRE_LAB=1`, where it fails.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{cannot_run, Lab, Proc};

/// Raft timings well below etcd's defaults, so a leader change fits in a short lease.
const HEARTBEAT_MS: u32 = 50;
const ELECTION_TIMEOUT_MS: u32 = 500;

/// The `etcd` binary, if installed.
pub fn etcd_binary() -> Option<PathBuf> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A lab with `nodes`, or `None` after one `SKIP:` line (a panic when required).
pub fn lab_or_skip(test: &str, nodes: &[&str]) -> Option<Lab> {
    if etcd_binary().is_none() {
        cannot_run(test, "needs etcd (Debian package etcd-server)");
        return None;
    }
    Lab::new(test, nodes)
}

pub struct Member {
    pub name: String,
    pub ip: Ipv4Addr,
    proc: Option<Proc>,
}

/// One etcd cluster on lab nodes.
pub struct Cluster<'a> {
    lab: &'a Lab,
    pub members: Vec<Member>,
    data: PathBuf,
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl<'a> Cluster<'a> {
    /// Starts one member on each of `nodes` and waits until the cluster answers.
    pub fn start(lab: &'a Lab, nodes: &[&str]) -> Cluster<'a> {
        let members = nodes
            .iter()
            .map(|n| Member {
                name: n.to_string(),
                ip: lab.ip(n),
                proc: None,
            })
            .collect();
        // The lab's dir name is unique (fip-lab-<tag>); the data dir borrows it.
        let tag = lab
            .dir()
            .file_name()
            .expect("the lab dir has a name")
            .to_string_lossy()
            .into_owned();
        let data = PathBuf::from("/dev/shm").join(format!("{tag}-etcd"));
        std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("create {}: {e}", data.display()));
        let mut cluster = Cluster { lab, members, data };
        for i in 0..cluster.members.len() {
            cluster.launch(i);
        }
        cluster.wait_ready(Duration::from_secs(20));
        cluster
    }

    fn launch(&mut self, i: usize) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}:2380", m.name, m.ip))
            .collect();
        let m = &self.members[i];
        let data = self.data.join(&m.name);
        let client = format!("http://{}:2379", m.ip);
        let peer = format!("http://{}:2380", m.ip);
        let binary = etcd_binary().expect("etcd checked at lab start");
        let args = [
            binary.to_str().expect("a UTF-8 path").to_string(),
            format!("--name={}", m.name),
            format!("--data-dir={}", data.display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster={}", initial.join(",")),
            "--initial-cluster-state=new".into(),
            "--initial-cluster-token=fip-lab".into(),
            format!("--heartbeat-interval={HEARTBEAT_MS}"),
            format!("--election-timeout={ELECTION_TIMEOUT_MS}"),
            "--logger=zap".into(),
            "--log-level=warn".into(),
        ];
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let name = m.name.clone();
        self.members[i].proc = Some(self.lab.spawn(&name, &argv, &[]));
    }

    /// Client URLs of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://{}:2379", m.ip))
            .collect()
    }

    /// The endpoints as a YAML flow list.
    pub fn endpoints_yaml(&self) -> String {
        format!("[{}]", self.endpoints().join(", "))
    }

    /// SIGKILL for member `i` (its data stays: [`Cluster::restart`] brings it back).
    pub fn kill(&mut self, i: usize) {
        if let Some(p) = self.members[i].proc.take() {
            p.kill9();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.launch(i);
    }

    /// Which member leads, asked of the running members; `None` when none answers.
    pub fn leader(&self) -> Option<usize> {
        let running: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].proc.is_some())
            .collect();
        let first = *running.first()?;
        let endpoints = self.endpoints();
        let node = self.members[first].name.clone();
        let ids = self.lab.in_ns(&node, move || member_ids(endpoints))?;
        ids.leader_index
    }

    /// Hands the leadership to member `to` (etcd's move-leader, asked of the current
    /// leader); true once `to` leads.
    pub fn make_leader(&self, to: usize) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        if leader == to {
            return true;
        }
        let from = format!("http://{}:2379", self.members[leader].ip);
        let target = format!("http://{}:2379", self.members[to].ip);
        let node = self.members[leader].name.clone();
        let moved = self.lab.in_ns(&node, move || {
            one_request(async move {
                let status = connect(&target).await?.status().await.ok()?;
                let id = status.header()?.member_id();
                connect(&from).await?.move_leader(id).await.ok()
            })
        });
        moved.is_some() && self.leader() == Some(to)
    }

    /// The ids of the leases etcd keeps; empty when etcd does not answer.
    pub fn leases(&self) -> Vec<i64> {
        self.ask(|mut client| async move {
            let leases = client.leases().await.ok()?;
            Some(leases.leases().iter().map(|l| l.id()).collect())
        })
        .unwrap_or_default()
    }

    /// Revokes lease `id` by hand, as an operator might; false when etcd did not do it.
    pub fn revoke(&self, id: i64) -> bool {
        self.ask(move |mut client| async move { client.lease_revoke(id).await.ok() })
            .is_some()
    }

    /// `request` with a client of the first running member, in its namespace; `None` when
    /// it does not answer within a second.
    fn ask<T, F>(
        &self,
        request: impl FnOnce(etcd_client::Client) -> F + Send + 'static,
    ) -> Option<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Option<T>>,
    {
        let m = self.members.iter().find(|m| m.proc.is_some())?;
        let endpoint = format!("http://{}:2379", m.ip);
        self.lab.in_ns(&m.name, move || {
            one_request(async move { request(connect(&endpoint).await?).await })
        })
    }

    /// Waits until every running member answers a status request.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for m in self.members.iter().filter(|m| m.proc.is_some()) {
            let endpoint = format!("http://{}:2379", m.ip);
            loop {
                let e = endpoint.clone();
                let ok = self.lab.in_ns(&m.name, move || {
                    member_ids(vec![e]).is_some_and(|ids| ids.has_leader)
                });
                if ok {
                    break;
                }
                let log = m.proc.as_ref().map(Proc::log).unwrap_or_default();
                assert!(
                    Instant::now() < deadline,
                    "etcd {} not ready after {timeout:?}; log:\n{log}",
                    m.name
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

struct MemberIds {
    /// Some member that answered knows a leader.
    has_leader: bool,
    /// Index (in the endpoint order given) of the member that leads.
    leader_index: Option<usize>,
}

/// Runs `request` on a throw-away runtime, bounded to a second; `None` on no answer.
fn one_request<T>(request: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(1), request)
            .await
            .ok()
            .flatten()
    })
}

async fn connect(endpoint: &str) -> Option<etcd_client::Client> {
    let options =
        etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_millis(300));
    etcd_client::Client::connect([endpoint], Some(options))
        .await
        .ok()
}

/// Asks each endpoint for its member id and the leader's.
fn member_ids(endpoints: Vec<String>) -> Option<MemberIds> {
    let mut ids = Vec::new();
    let mut leader = None;
    for e in &endpoints {
        let status = one_request(async {
            let mut client = connect(e).await?;
            client.status().await.ok()
        });
        match status {
            Some(s) => {
                ids.push(Some(s.header().map_or(0, |h| h.member_id())));
                leader = leader.or((s.leader() != 0).then_some(s.leader()));
            }
            None => ids.push(None),
        }
    }
    ids.iter().any(Option::is_some).then(|| MemberIds {
        has_leader: leader.is_some(),
        leader_index: leader.and_then(|l| ids.iter().position(|id| *id == Some(l))),
    })
}
