//! Compressed pages are decoded, rewritten and encoded again as they stream; everything
//! the proxy cannot or must not decode passes through byte for byte.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::BodyExt;

use crate::support::*;

/// A GET of `path` through `proxy` from a client that accepts gzip, for a test that reads
/// the response as it streams.
fn gzip_request(proxy: &invent_proxy::RunningProxy, path: &str) -> http::Request<http_body_util::Full<Bytes>> {
    let uri = format!("http://{}{path}", proxy.local_addr());
    http::Request::get(uri).header("accept-encoding", "gzip").body(http_body_util::Full::new(Bytes::new())).unwrap()
}

const PAGE: &str = "<!DOCTYPE html><html><head><title>Shop</title></head><body><h1>Caf\u{e9}</h1></body></html>";

fn rewritten() -> String {
    PAGE.replace("</body>", &format!("{WIDGET}</body>"))
}

fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    let flate = flate2::Compression::default();
    match coding {
        "gzip" => finish(flate2::write::GzEncoder::new(Vec::new(), flate), data, |e| e.finish().unwrap()),
        "deflate" => finish(flate2::write::ZlibEncoder::new(Vec::new(), flate), data, |e| e.finish().unwrap()),
        "raw-deflate" => finish(flate2::write::DeflateEncoder::new(Vec::new(), flate), data, |e| e.finish().unwrap()),
        "br" => finish(brotli::CompressorWriter::new(Vec::new(), 4096, 5, 20), data, |e| e.into_inner()),
        "zstd" => zstd::encode_all(data, 3).unwrap(),
        other => panic!("{other}"),
    }
}

fn finish<W: Write>(mut writer: W, data: &[u8], end: impl FnOnce(W) -> Vec<u8>) -> Vec<u8> {
    writer.write_all(data).unwrap();
    end(writer)
}

fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => finish(flate2::write::GzDecoder::new(Vec::new()), data, |d| d.finish().unwrap()),
        "deflate" => finish(flate2::write::ZlibDecoder::new(Vec::new()), data, |d| d.finish().unwrap()),
        "br" => finish(brotli::DecompressorWriter::new(Vec::new(), 4096), data, |d| d.into_inner().unwrap()),
        "zstd" => zstd::decode_all(data).unwrap(),
        other => panic!("{other}"),
    }
}

/// An upstream serving `body` with `Content-Encoding: coding` and `content_type`.
async fn compressed_upstream(content_type: &'static str, coding: &'static str, body: Vec<u8>) -> Upstream {
    spawn_upstream(move |_| {
        let body = body.clone();
        async move {
            let mut response = respond(StatusCode::OK, content_type, Bytes::from(body));
            response.headers_mut().insert(header::CONTENT_ENCODING, coding.parse().unwrap());
            response
        }
    })
    .await
}

#[tokio::test]
async fn each_coding_is_rewritten_and_encoded_again_for_a_client_that_takes_it() {
    for (coding, sent_as) in
        [("gzip", "gzip"), ("deflate", "deflate"), ("raw-deflate", "deflate"), ("br", "br"), ("zstd", "zstd")]
    {
        let upstream = compressed_upstream("text/html", sent_as, encode(coding, PAGE.as_bytes())).await;
        let proxy = spawn_default_proxy(upstream.addr).await;
        let page = get_with(&proxy, "/", &[("accept-encoding", "gzip, deflate, br, zstd")]).await;
        assert_eq!(page.headers[header::CONTENT_ENCODING], sent_as, "{coding}");
        assert_eq!(String::from_utf8(decode(sent_as, &page.body)).unwrap(), rewritten(), "{coding}");
        assert!(page.headers.get_all(header::VARY).iter().any(|v| v == "Accept-Encoding"), "{coding}");
        assert_eq!(page.headers[header::CONTENT_LENGTH], page.body.len().to_string().as_str(), "{coding}");
    }
}

#[tokio::test]
async fn a_client_that_does_not_take_the_coding_gets_identity() {
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let upstream = compressed_upstream("text/html", coding, encode(coding, PAGE.as_bytes())).await;
        let proxy = spawn_default_proxy(upstream.addr).await;
        for accept in [None, Some("identity"), Some("identity, *;q=0"), Some("gzip;q=0, deflate;q=0, br;q=0, zstd;q=0")]
        {
            let headers: Vec<(&str, &str)> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
            let page = get_with(&proxy, "/", &headers).await;
            assert!(!page.headers.contains_key(header::CONTENT_ENCODING), "{coding} {accept:?}");
            assert_eq!(page.text(), rewritten(), "{coding} {accept:?}");
            assert!(page.headers.get_all(header::VARY).iter().any(|v| v == "Accept-Encoding"), "{coding} {accept:?}");
        }
    }
}

#[tokio::test]
async fn what_cannot_or_must_not_be_decoded_passes_untouched() {
    let cases: Vec<(&'static str, &'static str, Vec<u8>)> = vec![
        ("text/html", "gzip, br", b"stacked: not decoded".to_vec()),
        ("text/html", "compress", b"unknown coding".to_vec()),
        ("application/json", "gzip", encode("gzip", b"{\"html\":\"<body></body>\"}")),
        ("text/html", "gzip", encode("gzip", b"<div>a fragment</div>")),
    ];
    for (content_type, coding, body) in cases {
        let upstream = compressed_upstream(content_type, coding, body.clone()).await;
        let proxy = spawn_default_proxy(upstream.addr).await;
        let received = get_with(&proxy, "/", &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(received.body, body, "{content_type} {coding}");
        assert_eq!(received.headers[header::CONTENT_ENCODING], coding);
        assert_eq!(received.headers[header::CONTENT_LENGTH], body.len().to_string().as_str());
    }
}

#[tokio::test]
async fn corrupt_compressed_input_ends_that_response_and_the_proxy_keeps_serving() {
    let first = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"<!DOCTYPE html><html><body><p>start</p>").unwrap();
        encoder.flush().unwrap();
        encoder.get_ref().clone()
    };
    let gate = Gate::new();
    let held = gate.clone();
    let upstream = spawn_upstream(move |req| {
        let (first, gate) = (first.clone(), held.clone());
        async move {
            let garbage = Bytes::from_static(b"\xff\xfe these bytes are not deflate \x00\x01\x02\x03 at all");
            if req.uri().path() == "/early" {
                let mut response = respond(
                    StatusCode::OK,
                    "text/html",
                    [&b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"[..], &garbage].concat(),
                );
                response.headers_mut().insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                return response;
            }
            let (tx, mut response) = streamed_html();
            response.headers_mut().insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
            tokio::spawn(async move {
                tx.send(Ok(Bytes::from(first))).await.unwrap();
                // The garbage comes once the client has the response's head.
                gate.wait().await;
                let _ = tx.send(Ok(garbage)).await;
            });
            response
        }
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let early = get_with(&proxy, "/early", &[("accept-encoding", "gzip")]).await;
    assert_eq!(early.status, StatusCode::BAD_GATEWAY, "corrupt before anything was sent");
    let request = gzip_request(&proxy, "/late");
    let late = tokio::time::timeout(Duration::from_secs(10), client().request(request)).await.unwrap().unwrap();
    assert_eq!(late.status(), StatusCode::OK);
    gate.open();
    assert!(late.into_body().collect().await.is_err(), "a broken page must not look complete");
    assert_eq!(get(&proxy, "/early").await.status, StatusCode::BAD_GATEWAY, "still serving");
}

#[tokio::test]
async fn the_first_bytes_of_a_compressed_page_are_not_held_back() {
    let gate = Gate::new();
    let upstream_gate = gate.clone();
    let upstream = spawn_upstream(move |_| {
        let gate = upstream_gate.clone();
        async move {
            let (tx, mut response) = streamed_html();
            response.headers_mut().insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
            tokio::spawn(async move {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(b"<!DOCTYPE html><html><body><h1>First</h1>").unwrap();
                encoder.flush().unwrap();
                tx.send(Ok(Bytes::from(std::mem::take(encoder.get_mut())))).await.unwrap();
                gate.wait().await;
                encoder.write_all(b"<p>rest</p></body></html>").unwrap();
                tx.send(Ok(Bytes::from(encoder.finish().unwrap()))).await.unwrap();
            });
            response
        }
    })
    .await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let request = gzip_request(&proxy, "/");
    let mut body = client().request(request).await.unwrap().into_body();
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    let first =
        tokio::time::timeout(Duration::from_secs(10), body.frame()).await.expect("not held back").unwrap().unwrap();
    decoder.write_all(first.data_ref().unwrap()).unwrap();
    decoder.flush().unwrap();
    assert!(String::from_utf8_lossy(decoder.get_ref()).contains("<h1>First</h1>"), "the first chunk decodes at once");
    gate.open();
    let rest = body.collect().await.unwrap().to_bytes();
    decoder.write_all(&rest).unwrap();
    let page = String::from_utf8(decoder.finish().unwrap()).unwrap();
    assert!(page.ends_with(&format!("<p>rest</p>{WIDGET}</body></html>")), "{page}");
}

#[tokio::test]
async fn a_cut_compressed_page_is_never_served_as_complete() {
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let whole = encode(coding, PAGE.as_bytes());
        let cut = whole[..whole.len() - 4].to_vec();
        let upstream = compressed_upstream("text/html", coding, cut).await;
        let proxy = spawn_default_proxy(upstream.addr).await;
        let received = get_with(&proxy, "/", &[("accept-encoding", coding)]).await;
        assert_eq!(received.status, StatusCode::BAD_GATEWAY, "{coding}");
    }
}

#[tokio::test]
async fn concatenated_gzip_members_are_one_page() {
    let body = [encode("gzip", b"<!DOCTYPE html><html><body><p>one</p>"), encode("gzip", b"<p>two</p></body></html>")]
        .concat();
    let upstream = compressed_upstream("text/html", "gzip", body).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let page = get(&proxy, "/").await;
    assert_eq!(page.text(), format!("<!DOCTYPE html><html><body><p>one</p><p>two</p>{WIDGET}</body></html>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decompression_bomb_keeps_memory_flat() {
    use crate::support::process::ProxyProcess;
    const EXPANDED: usize = 64 * 1024 * 1024;
    let bomb = {
        let mut page = b"<!DOCTYPE html><html><body><pre>".to_vec();
        page.resize(EXPANDED, b'a');
        page.extend_from_slice(b"</pre></body></html>");
        zstd::encode_all(&page[..], 3).unwrap()
    };
    assert!(bomb.len() < 64 * 1024, "a small body: {} bytes", bomb.len());
    let upstream = compressed_upstream("text/html", "zstd", bomb).await;
    let proxy = ProxyProcess::start(&ProxyYaml::new(upstream.addr).to_string(), &[]);
    let before = proxy.peak_rss_kib();
    let addr = proxy.addr;
    let received = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
        let mut buffer = vec![0u8; 256 * 1024];
        let mut total = 0;
        loop {
            let n = socket.read(&mut buffer).unwrap();
            if n == 0 {
                break total;
            }
            total += n;
        }
    })
    .await
    .unwrap();
    assert!(received > EXPANDED, "the whole page arrived decoded ({received} bytes)");
    let growth_mib = proxy.peak_rss_kib().saturating_sub(before) / 1024;
    assert!(growth_mib < 24, "peak memory grew by {growth_mib} MiB for a {EXPANDED}-byte expansion");
}

/// About 1 MB of HTML that compresses poorly: random words.
fn large_page() -> String {
    let mut page = String::from("<!DOCTYPE html><html><head><title>Big</title></head><body>\n");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    while page.len() < 1_000_000 {
        page.push_str("<p>");
        for _ in 0..40 {
            let word = next();
            (0..2 + word % 9).for_each(|i| page.push(char::from(b'a' + (word >> (8 + 5 * i) & 31) as u8 % 26)));
            page.push(' ');
        }
        page.push_str("</p>\n");
    }
    page.push_str("</body></html>\n");
    page
}

/// A compressed page is judged on its decoded bytes: one whose compressed bytes come in a
/// read of 64 KiB or more (a large page, from a warm keep-alive connection whose read
/// buffer has grown) still opens with its doctype and gets the widget, for a client that
/// takes gzip and for one that does not.
#[tokio::test]
async fn a_large_compressed_page_read_in_one_go_is_still_a_page() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    let page = large_page();
    let gzipped = encode("gzip", page.as_bytes());
    assert!(gzipped.len() >= 200 * 1024, "{} bytes compressed", gzipped.len());
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-encoding: gzip\r\n\
         content-length: {}\r\n\r\n",
        gzipped.len()
    );
    let response = Bytes::from([head.as_bytes(), &gzipped].concat());
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&connections);
    let upstream = spawn_raw_upstream(move |mut socket| {
        counted.fetch_add(1, Ordering::SeqCst);
        let response = response.clone();
        async move {
            // The head and the whole body in one write.
            while read_request(&mut socket).await.is_some() {
                socket.write_all(&response).await.unwrap();
            }
        }
    })
    .await;
    // One worker: every request reuses the upstream connection the one before it warmed.
    let proxy = spawn_proxy(ProxyYaml::new(upstream).workers(1)).await;
    for (n, gzip) in [true, false, true, false].into_iter().enumerate() {
        let accept: &[(&str, &str)] = if gzip { &[("accept-encoding", "gzip")] } else { &[] };
        let received = get_with(&proxy, "/", accept).await;
        let coding = received.headers.get(header::CONTENT_ENCODING);
        let text = if gzip {
            assert_eq!(coding.map(|c| c.to_str().unwrap()), Some("gzip"), "request {n}");
            String::from_utf8(decode("gzip", &received.body)).unwrap()
        } else {
            assert_eq!(coding, None, "request {n}");
            received.text()
        };
        assert_eq!(text.matches("<invent-assistant").count(), 1, "request {n} (gzip: {gzip})");
        assert!(text.replacen(WIDGET, "", 1) == page, "request {n}: the page, otherwise byte for byte");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one warm upstream connection");
}

/// `page` gzip-compressed at level 6, as origins compress pages ahead.
fn gzip6(page: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(page).unwrap();
    encoder.finish().unwrap()
}

/// A page of many deflate blocks goes to a client that takes gzip with the upstream's own
/// compressed bytes up to the widget: only the end is encoded by the proxy.
#[tokio::test]
async fn a_page_of_many_blocks_keeps_the_upstream_compressed_bytes() {
    let page = large_page();
    let gzipped = gzip6(page.as_bytes());
    let upstream = compressed_upstream("text/html", "gzip", gzipped.clone()).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let received = get_with(&proxy, "/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(received.headers[header::CONTENT_ENCODING], "gzip");
    let decoded = String::from_utf8(decode("gzip", &received.body)).unwrap();
    assert_eq!(decoded, page.replace("</body>", &format!("{WIDGET}</body>")));
    let same = received.body.iter().zip(&gzipped).take_while(|(a, b)| a == b).count();
    assert!(same > gzipped.len() * 9 / 10, "{same} of {} upstream bytes sent as they were", gzipped.len());
    // Within 2% of the upstream's bytes and the widget's.
    let bound = (gzipped.len() + WIDGET.len()) * 102 / 100;
    assert!(received.body.len() <= bound, "{} bytes for {}", received.body.len(), gzipped.len());
}

/// Several gzip members are one page: the client that takes gzip decodes the page with the
/// widget, once.
#[tokio::test]
async fn a_page_in_several_gzip_members_is_one_page_for_a_client_that_takes_gzip() {
    let (first, second) = ("<!DOCTYPE html><html><body><p>one</p>", "<p>two</p></body></html>");
    let body = [gzip6(first.as_bytes()), gzip6(second.as_bytes()), gzip6(b"")].concat();
    let upstream = compressed_upstream("text/html", "gzip", body).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let received = get_with(&proxy, "/", &[("accept-encoding", "gzip")]).await;
    let mut decoded = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&received.body[..]), &mut decoded).unwrap();
    assert_eq!(decoded, format!("<!DOCTYPE html><html><body><p>one</p><p>two</p>{WIDGET}</body></html>"));
}

/// zlib-wrapped deflate, as RFC 9110 means "deflate": the Adler-32 trailer is the page's
/// as sent; raw deflate from servers that get it wrong goes on zlib-wrapped.
#[tokio::test]
async fn a_deflate_page_keeps_its_zlib_wrapper_with_the_adler_32_of_the_page_sent() {
    let page = large_page();
    for coding in ["deflate", "raw-deflate"] {
        let upstream = compressed_upstream("text/html", "deflate", encode(coding, page.as_bytes())).await;
        let proxy = spawn_default_proxy(upstream.addr).await;
        let received = get_with(&proxy, "/", &[("accept-encoding", "deflate")]).await;
        assert_eq!(received.headers[header::CONTENT_ENCODING], "deflate", "{coding}");
        let decoded = String::from_utf8(decode("deflate", &received.body)).unwrap();
        assert_eq!(decoded, page.replace("</body>", &format!("{WIDGET}</body>")), "{coding}");
    }
}

/// What follows a gzip page's end is dropped, as before; a page whose end is missing fails
/// after its head went out, and never looks complete.
#[tokio::test]
async fn bytes_after_the_end_are_dropped_and_a_missing_end_fails_the_page() {
    let page = large_page();
    let gzipped = gzip6(page.as_bytes());
    let trailing = [&gzipped[..], b"\0\0 trailing bytes, not a gzip member"].concat();
    let upstream = compressed_upstream("text/html", "gzip", trailing).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let received = get_with(&proxy, "/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(String::from_utf8(decode("gzip", &received.body)).unwrap().matches("<invent-assistant").count(), 1);
    assert!(!received.body.ends_with(b"not a gzip member"));

    let cut = gzipped[..gzipped.len() - 4].to_vec();
    let upstream = compressed_upstream("text/html", "gzip", cut).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let request = gzip_request(&proxy, "/");
    let response = tokio::time::timeout(Duration::from_secs(10), client().request(request)).await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a large page's head goes out before its end is read");
    assert!(response.into_body().collect().await.is_err(), "a page whose end is missing must not look complete");
}
