//! Connections: one `tokio-postgres` client per connection, its socket driven by a task of its
//! own.
//!
//! Why `tokio-postgres` rather than the sync `postgres` crate the services use: the lab is a
//! measuring instrument that does many small things at once — writers on a fixed schedule,
//! reads scheduled at 0, 1, 2, 5 … ms after each commit on every replica, a watcher per node
//! polling its position every millisecond, sessions waiting with a bound, a client-side bound
//! on commits that cancels the query. Tasks and timers on one runtime do that with a handful of
//! threads on two cores; the sync crate (itself a wrapper around this one) would need a thread
//! per connection. The decisions the services will reuse ([`crate::session`], [`crate::pbs`])
//! take no client at all.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

/// A connection attempt gives up after this long: loopback answers in microseconds, and a
/// stopped node refuses at once; only a hung server takes longer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection (a libpq key-value string or a URL) and drives it in a task that ends
/// when the client is dropped or the server goes away.
pub async fn connect(conninfo: &str) -> Result<Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = conninfo.parse()?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // An error here (the server went away) also fails the client's next query, which is
        // where it is handled.
        let _ = connection.await;
    });
    Ok(client)
}
