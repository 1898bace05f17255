//! Connecting to etcd, shared by the campaign, `release` and `probe`: every request is
//! bounded in time.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::config::{Endpoint, Etcd};

/// The endpoints as one line, for errors.
pub(super) fn endpoint_list(etcd: &Etcd) -> String {
    etcd.endpoints
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A client for `etcd`'s endpoints; with a user, this already asks etcd for a token.
pub(super) async fn connect(etcd: &Etcd) -> Result<Client, String> {
    let urls: Vec<String> = etcd.endpoints.iter().map(ToString::to_string).collect();
    bounded(etcd.lease_ttl, Client::connect(urls, Some(options(etcd)))).await
}

/// One client per endpoint, for the keep-alive stream. The balanced client picks an
/// endpoint at random among those it deems ready, and a dead member counts as ready (its
/// connection error is only reported by the request sent to it); a stream that broke is
/// reopened on the next endpoint instead, so a dead member is tried at most once per round.
pub(super) struct Endpoints {
    clients: Vec<Option<Client>>,
    current: usize,
}

impl Endpoints {
    pub(super) fn new(etcd: &Etcd) -> Endpoints {
        Endpoints {
            clients: vec![None; etcd.endpoints.len()],
            current: 0,
        }
    }

    /// The endpoint the next stream opens on.
    pub(super) fn current<'a>(&self, etcd: &'a Etcd) -> &'a Endpoint {
        &etcd.endpoints[self.current]
    }

    /// Moves on to the next endpoint (the current one failed).
    pub(super) fn next(&mut self) {
        self.current = (self.current + 1) % self.clients.len();
    }

    /// A client of the current endpoint, connected on first use.
    pub(super) async fn client(&mut self, etcd: &Etcd, budget: Duration) -> Result<Client, String> {
        if let Some(client) = &self.clients[self.current] {
            return Ok(client.clone());
        }
        let url = etcd.endpoints[self.current].to_string();
        let client = bounded(budget, Client::connect([url], Some(options(etcd)))).await?;
        self.clients[self.current] = Some(client.clone());
        Ok(client)
    }
}

/// `request`, or an error once `budget` has passed without an answer.
pub(super) async fn bounded<T>(
    budget: Duration,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(budget, request).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
    }
}

fn options(etcd: &Etcd) -> ConnectOptions {
    let mut options = ConnectOptions::new().with_connect_timeout(etcd.keepalive);
    if let Some(tls) = &etcd.tls {
        let mut config = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(tls.ca.bytes()));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(etcd_client::Identity::from_pem(cert.bytes(), key.bytes()));
        }
        options = options.with_tls(config);
    }
    if let Some(user) = &etcd.user {
        options = options.with_user(
            user.name.clone(),
            String::from_utf8_lossy(user.password.bytes()).into_owned(),
        );
    }
    options
}
