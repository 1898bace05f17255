//! Connecting to etcd, shared by the campaign, `release` and `probe`: every request is
//! bounded in time.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::config::Etcd;

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
