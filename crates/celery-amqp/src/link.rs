//! The state of a connection, as a [`tokio::sync::watch`] channel: whether it is
//! up and how often it was re-established, updated when it happens (not when the
//! next message passes), so that readiness checks and metrics can follow it.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::Connection;
use tokio::sync::watch;

/// Where a connection of a [`TaskConsumer`](crate::TaskConsumer) or a
/// [`Publisher`](crate::Publisher) stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// Connected now (a lost connection shows within about a second, also while
    /// nothing is consumed or published).
    pub connected: bool,
    /// How often the connection was re-established after the first one.
    pub reconnects: u64,
    /// Which connection this is, so that a late word about an old one is ignored.
    session: u64,
}

/// The sending side, kept by the consumer or publisher.
#[derive(Debug)]
pub(crate) struct LinkTx(watch::Sender<Link>);

impl Default for LinkTx {
    fn default() -> Self {
        LinkTx(watch::channel(Link::default()).0)
    }
}

impl LinkTx {
    pub(crate) fn subscribe(&self) -> watch::Receiver<Link> {
        self.0.subscribe()
    }

    pub(crate) fn get(&self) -> Link {
        *self.0.borrow()
    }

    /// A new connection is up (a reconnect unless it is the first one); it is
    /// watched until the returned guard is dropped, which marks it down.
    pub(crate) fn up(&self, connection: &Connection) -> Watcher {
        let mut session = 0;
        self.0.send_modify(|link| {
            if link.session > 0 {
                link.reconnects += 1;
            }
            link.session += 1;
            link.connected = true;
            session = link.session;
        });
        let tx = self.0.clone();
        let status = connection.status().clone();
        let mut events = Some(Box::pin(connection.events_listener()));
        let task = tokio::spawn(async move {
            loop {
                // An error event says at once; the poll covers what sends none.
                match events.as_mut() {
                    Some(stream) => tokio::select! {
                        event = stream.next() => if event.is_none() { events = None },
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    },
                    None => tokio::time::sleep(Duration::from_secs(1)).await,
                }
                if !status.connected() {
                    down(&tx, session);
                    return;
                }
            }
        });
        Watcher { task: task.abort_handle(), tx: self.0.clone(), session }
    }
}

/// Marks the link down, when it still stands for connection `session` (a later
/// one may be up already).
fn down(tx: &watch::Sender<Link>, session: u64) {
    tx.send_if_modified(|link| {
        let changed = link.session == session && link.connected;
        if changed {
            link.connected = false;
        }
        changed
    });
}

/// Watches one connection; dropped (its session forgotten), stops watching and
/// marks the link down, unless a later connection is up already.
#[derive(Debug)]
pub(crate) struct Watcher {
    task: tokio::task::AbortHandle,
    tx: watch::Sender<Link>,
    session: u64,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
        down(&self.tx, self.session);
    }
}
