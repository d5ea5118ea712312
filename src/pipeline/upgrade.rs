//! Protocol upgrades (WebSocket): the handshake is forwarded with its `Upgrade` header
//! ([`crate::headers::upgrade_protocol`]), and after a `101 Switching Protocols` the two
//! connections are joined byte for byte.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

/// Joins the client's and the upstream's upgraded connections until either side closes.
pub(super) async fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(error) => {
            debug!(%error, "upgrade did not complete");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((to_upstream, to_client)) => {
            debug!(to_upstream, to_client, "upgraded connection closed")
        }
        Err(error) => debug!(%error, "upgraded connection ended with an error"),
    }
}
