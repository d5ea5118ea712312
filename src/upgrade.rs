//! Protocol upgrades (WebSocket): the handshake is forwarded with its `Upgrade` header,
//! and after a `101 Switching Protocols` the two connections are joined byte for byte.

use http::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

/// The protocol a request asks to switch to: an `Upgrade` header together with the
/// `upgrade` token in `Connection` (RFC 9110 §7.8).
pub fn requested_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_says_upgrade =
        crate::headers::list_items(headers, header::CONNECTION).any(|token| token.eq_ignore_ascii_case("upgrade"));
    connection_says_upgrade.then(|| headers.get(header::UPGRADE).cloned()).flatten()
}

/// Puts back the two headers an upgrade needs after hop-by-hop headers were removed.
pub fn restore_headers(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::UPGRADE, protocol);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Joins the client's and the upstream's upgraded connections until either side closes.
pub async fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_needs_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(requested_protocol(&headers), None);
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert_eq!(requested_protocol(&headers), Some(HeaderValue::from_static("websocket")));
        headers.remove(header::UPGRADE);
        assert_eq!(requested_protocol(&headers), None);
    }
}
