//! Opening connections: URL, TLS and the connection name the broker shows.

use std::path::PathBuf;

use lapin::tcp::OwnedTLSConfig;
use lapin::{Connection, ConnectionProperties};

use crate::error::{Error, Result};
use crate::uri::BrokerUrl;

/// How to reach a broker.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Where.
    pub url: BrokerUrl,
    /// PEM file with extra CA certificates to trust for `amqps`, on top of the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// The name the broker's management UI shows for the connection, so an
    /// operator can tell which worker it is.
    pub connection_name: String,
}

impl BrokerOptions {
    /// Options for `url` with no extra CA and a connection name.
    pub fn new(url: BrokerUrl, connection_name: impl Into<String>) -> Self {
        BrokerOptions { url, ca_file: None, connection_name: connection_name.into() }
    }

    pub(crate) async fn connect(&self) -> Result<Connection> {
        let mut tls = OwnedTLSConfig::default();
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| Error::Tls(format!("cannot read CA file {}: {e}", path.display())))?;
            tls.cert_chain = Some(pem);
        }
        let props = ConnectionProperties::default()
            .with_connection_name(self.connection_name.as_str().into())
            .with_client_property("product".into(), "aci-worker".into());
        let runtime = lapin::runtime::default_runtime()
            .map_err(|source| Error::Connect { broker: self.url.to_string(), source })?;
        Connection::connect_uri_with_config(self.url.to_amqp_uri(), props, tls, runtime)
            .await
            .map_err(|source| Error::Connect { broker: self.url.to_string(), source })
    }
}
