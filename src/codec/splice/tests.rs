//! The splice against the plain rewrite: for random pages (tiny to several blocks, with
//! and without `</body>`, the widget at the body's end or the head's), compressed at every
//! level, in one or several members, cut into random chunks with random pauses, the client
//! decodes exactly the page the uncompressed path sends, byte for byte.

use std::collections::VecDeque;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use invent_rewrite::{Injection, Position, RewriteBody, Syntax, Transcode, Widget};
use proptest::prelude::*;

use super::super::inflate::tests::{compress, page_like};
use super::super::{Coding, transcode};

/// An upstream body: chunks, with a pause (`None`: pending once) where the upstream waits.
struct Upstream(VecDeque<Option<Bytes>>);

impl Body for Upstream {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.0.pop_front() {
            Some(Some(chunk)) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Some(None) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => Poll::Ready(None),
        }
    }
}

fn injection(position: Position) -> Injection {
    Injection {
        widget: Arc::new(Widget::new("ast_splice", "https://www.useinvent.com/button.js", &[])),
        visitor: None,
        position,
        syntax: Syntax::Html,
        encoding: Some(encoding_rs::UTF_8),
        nonce: None,
        max_memory: invent_rewrite::REWRITER_MAX_MEMORY,
    }
}

/// The body a client gets for `chunks` through the rewrite with `transcode`: its frames,
/// in groups between the times it had nothing more to send (the upstream paused).
fn rewrite(chunks: VecDeque<Option<Bytes>>, position: Position, transcode: Transcode) -> (Vec<u8>, Vec<Vec<Bytes>>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async move {
        let mut body = RewriteBody::new(Upstream(chunks), injection(position), transcode);
        body.sniff().await.unwrap();
        let mut groups = vec![Vec::new()];
        loop {
            match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
                Poll::Pending => groups.push(Vec::new()),
                Poll::Ready(None) => break,
                Poll::Ready(Some(frame)) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        groups.last_mut().unwrap().push(data);
                    }
                }
            }
        }
        (groups.concat().concat(), groups)
    })
}

/// What a client decodes of a `wrap`-coded body (every gzip member).
fn client_decodes(wrap: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match wrap {
        "gzip" => flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out),
        // Raw deflate goes on zlib-wrapped, as "deflate" should be.
        _ => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
    }
    .unwrap_or_else(|e| panic!("the client cannot decode the {wrap} body: {e}"));
    out
}

/// A page: a head, `len` bytes of body content, and maybe its end tags.
fn page(seed: u64, len: usize, ends: bool) -> Vec<u8> {
    let mut page = b"<!DOCTYPE html><html><head><title>Splice</title></head><body>\n".to_vec();
    // The content has no `</body>` of its own: where the widget goes is the page's end.
    page.extend(page_like(seed, len).into_iter().map(|b| if b == b'<' { b'[' } else { b }));
    if ends {
        page.extend_from_slice(b"\n</body></html>\n");
    }
    page
}

/// `page` compressed as `wrap` at `level`, in `members` gzip members, with flushes.
fn compressed(page: &[u8], wrap: &str, level: u32, members: usize, flushes: &[usize]) -> Vec<u8> {
    if wrap != "gzip" || members <= 1 || page.len() < members {
        return compress(page, level, flushes, 0, wrap);
    }
    let size = page.len().div_ceil(members);
    page.chunks(size).flat_map(|part| compress(part, level, flushes, 0, wrap)).collect()
}

/// The compressed body cut into chunks of `sizes` (cycled), a pause after those `pauses`
/// marks.
fn chunked(body: &[u8], sizes: &[usize], pauses: u64) -> VecDeque<Option<Bytes>> {
    let mut chunks = VecDeque::new();
    let mut at = 0;
    for (i, &size) in sizes.iter().cycle().enumerate() {
        if at >= body.len() {
            break;
        }
        let end = (at + size.max(1)).min(body.len());
        chunks.push_back(Some(Bytes::copy_from_slice(&body[at..end])));
        if pauses >> (i % 64) & 1 == 1 {
            // Pending twice: once for the rewrite to flush, once to have nothing to send.
            chunks.extend([None, None]);
        }
        at = end;
    }
    chunks
}

fn coding(wrap: &str) -> Coding {
    if wrap == "gzip" { Coding::Gzip } else { Coding::Deflate }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_client_decodes_the_page_the_plain_rewrite_sends(
        wrap in prop_oneof![Just("gzip"), Just("zlib"), Just("raw")],
        (seed, len) in (any::<u64>(), prop_oneof![0usize..200, 200usize..40_000, 40_000usize..200_000]),
        ends in any::<bool>(),
        head in any::<bool>(),
        level in 1u32..=9,
        members in 1usize..4,
        mut flushes in prop::collection::vec(0usize..200_000, 0..4),
        sizes in prop::collection::vec(1usize..20_000, 1..6),
        pauses in any::<u64>(),
    ) {
        flushes.sort_unstable();
        let page = page(seed, len, ends);
        let position = if head { Position::HeadEnd } else { Position::BodyEnd };
        let body = compressed(&page, wrap, level, members, &flushes);
        let (plain, _) = rewrite([Some(Bytes::from(page.clone()))].into(), position, Transcode::Identity);
        let transcode = transcode(coding(wrap), true).unwrap();
        let (spliced, _) = rewrite(chunked(&body, &sizes, pauses), position, transcode);
        let decoded = client_decodes(wrap, &spliced);
        prop_assert!(decoded == plain, "the client decodes {} bytes, the plain rewrite sends {}", decoded.len(), plain.len());
        prop_assert_eq!(plain.len(), page.len() + WIDGET_LEN);
    }
}

/// The widget's length in these pages.
const WIDGET_LEN: usize = "<invent-assistant assistant-id=\"ast_splice\"></invent-assistant>\
<script type=\"text/javascript\" src=\"https://www.useinvent.com/button.js\" async defer></script>"
    .len();

/// A 30 KB page compressed at level 6 is one block: nearly all of its bits go through.
#[test]
fn a_page_in_one_block_keeps_nearly_all_of_the_upstream_bits() {
    let page = page(30, 30_000, true);
    let body = compress(&page, 6, &[], 0, "gzip");
    let (spliced, _) = rewrite(chunked(&body, &[4096], 0), Position::BodyEnd, transcode(Coding::Gzip, true).unwrap());
    let decoded = client_decodes("gzip", &spliced);
    assert_eq!(decoded.len(), page.len() + WIDGET_LEN);
    // Within 2% of the upstream's bytes and the widget's: the widget and the page's end
    // go as literals (8-9 bits a byte), with a few bytes of block framing.
    let bound = (body.len() + WIDGET_LEN) * 102 / 100;
    assert!(spliced.len() <= bound, "{} bytes sent for the upstream's {}", spliced.len(), body.len());
    // The same bytes but for the block's BFINAL bit (the first bit after the header).
    let same = spliced
        .iter()
        .zip(&body)
        .enumerate()
        .take_while(|(i, (a, b))| *a | u8::from(*i == 10) == *b | u8::from(*i == 10))
        .count();
    assert!(same + 64 >= body.len() - 8 - 16, "{same} of {} bytes went through unchanged", body.len());
}

/// A page that pauses mid-stream: what was sent before the pause decodes to the page up to
/// about where the upstream's bytes had got (a tag the rewrite holds, a symbol).
#[test]
fn at_a_pause_the_client_can_decode_what_came() {
    let page = page(31, 20_000, true);
    let body = compress(&page, 6, &[], 0, "gzip");
    let half = body.len() / 2;
    let chunks = VecDeque::from([
        Some(Bytes::copy_from_slice(&body[..half])),
        None,
        None,
        Some(Bytes::copy_from_slice(&body[half..])),
    ]);
    let (_, groups) = rewrite(chunks, Position::BodyEnd, transcode(Coding::Gzip, true).unwrap());
    let before_pause = groups[0].concat();
    let decodable = |bytes: &[u8]| {
        let mut out = Vec::new();
        let _ = flate2::read::GzDecoder::new(bytes).read_to_end(&mut out);
        out.len()
    };
    let (sent, came) = (decodable(&before_pause), decodable(&body[..half]));
    assert!(sent + 300 >= came && sent <= came, "{sent} of {came} bytes decodable at the pause");
}
