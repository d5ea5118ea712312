//! The rewrite is the same however the upstream splits the page into chunks, and it never
//! changes a byte of the page it did not add. Failing splits are replayed from
//! `proptest-regressions/`.
// Test and bench code: a panic is the test failing, and its helpers are `pub` for the
// modules beside them.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use invent_rewrite::{Injection, Position, RewriteBody, Syntax, Visitor, Widget};
use proptest::prelude::*;

/// A body that yields the given chunks, one frame each, announcing its length or not
/// (as an upstream with or without `Content-Length` does).
struct Chunks(VecDeque<Bytes>, bool);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.1 {
            true => http_body::SizeHint::with_exact(self.0.iter().map(|c| c.len() as u64).sum()),
            false => http_body::SizeHint::default(),
        }
    }
}

/// The widget as the proxy makes it by default: kept across Turbo visits.
fn widget() -> Arc<Widget> {
    Arc::new(Widget::new("ast_test", "https://www.useinvent.com/button.js", &[]).kept_across_visits(true))
}

fn visitor() -> Visitor {
    Visitor {
        user_id: "user_42".into(),
        user_hash: "45bb144b8ebbe9876600b63739423f010f4ea3d43771ea3fee1329d463683b59".into(),
        user_name: Some("Zoë \"<b>\"".into()),
        user_avatar: None,
    }
}

/// Rewrites `page`, delivered in pieces cut at `cuts`.
fn rewrite(page: &[u8], cuts: &[usize], position: Position) -> Vec<u8> {
    rewrite_announced(page, cuts, position, false)
}

/// Like [`rewrite`]; `announced`: the body tells its length up front.
fn rewrite_announced(page: &[u8], cuts: &[usize], position: Position, announced: bool) -> Vec<u8> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (page.len() + 1)).collect();
    bounds.extend([0, page.len()]);
    bounds.sort_unstable();
    bounds.dedup();
    let chunks = bounds.windows(2).map(|w| Bytes::copy_from_slice(&page[w[0]..w[1]])).collect();
    let injection = Injection {
        widget: widget(),
        visitor: Some(std::sync::Arc::new(visitor())),
        position,
        syntax: Syntax::Html,
        encoding: None,
        nonce: None,
        max_memory: invent_rewrite::REWRITER_MAX_MEMORY,
    };
    let body = RewriteBody::new(Chunks(chunks, announced), injection, Default::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    runtime.block_on(async {
        let mut body = body;
        body.sniff().await.expect("sniff");
        body.collect().await.expect("body").to_bytes().to_vec()
    })
}

const PIECES: &[&str] = &[
    "\u{feff}",
    "<!DOCTYPE html>",
    "<html lang=\"en\">",
    "<head>",
    "<meta charset=\"utf-8\">",
    "<title>Café — ünïcödé</title>",
    "</head>",
    "<body class=\"x\">",
    "<p>Some text &amp; entities &lt;ok&gt;</p>",
    "<script>if (a < b && c > d) { document.write('</p>'); }</script>",
    "<!-- a comment with </body> inside -->",
    "<textarea></body></textarea>",
    "<div data-x='1'>日本語のテキスト</div>",
    "<br/>",
    "\n  ",
    "</body>",
    "</html>",
];

fn page() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_output_does_not_depend_on_chunk_boundaries(
        page in page(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        head_end in any::<bool>(),
        announced in any::<bool>(),
    ) {
        let position = if head_end { Position::HeadEnd } else { Position::BodyEnd };
        let whole = rewrite(page.as_bytes(), &[], position);
        let split = rewrite_announced(page.as_bytes(), &cuts, position, announced);
        prop_assert_eq!(String::from_utf8_lossy(&split), String::from_utf8_lossy(&whole));
    }

    #[test]
    fn only_the_widget_is_added_and_at_most_once(
        page in page(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let output = String::from_utf8(rewrite(page.as_bytes(), &cuts, Position::BodyEnd)).expect("utf-8");
        let markup = widget().markup(Some(&visitor()), Syntax::Html, None, true, true);
        prop_assert!(output.matches("<invent-assistant").count() <= 1);
        prop_assert_eq!(output.replacen(&markup, "", 1), page);
    }
}

#[test]
fn every_single_byte_split_of_a_page_gives_the_same_output() {
    let page = PIECES.concat();
    let whole = rewrite(page.as_bytes(), &[], Position::BodyEnd);
    let every_byte: Vec<usize> = (1..page.len()).collect();
    assert_eq!(rewrite(page.as_bytes(), &every_byte, Position::BodyEnd), whole);
    assert!(String::from_utf8(whole).expect("utf-8").contains("user-hash=\"45bb144b"));
}

#[test]
fn a_page_too_big_for_the_rewriter_passes_through_unchanged() {
    let huge = "a".repeat(3 * invent_rewrite::REWRITER_MAX_MEMORY);
    let page = format!("<!doctype html><html><body title=\"{huge}\"><div>x</div><p>after</p></body></html>");
    // Delivered in 64 KiB chunks, a tag the rewriter handles (`<body>`) must be buffered
    // across chunks: past the memory cap the rewriter gives up, and the page continues
    // exactly as the upstream sent it.
    let cuts: Vec<usize> = (1..60).map(|i| i * 64 * 1024).collect();
    let output = rewrite(page.as_bytes(), &cuts, Position::BodyEnd);
    assert_eq!(output.len(), page.len(), "never truncated, nothing added after the bail-out");
    assert!(output == page.as_bytes(), "every byte as the upstream sent it");
    // In one chunk nothing needs buffering, so the page is rewritten as usual; and a
    // huge tag the rewriter has no handler for is never buffered at all.
    let div = page.replace("<body title", "<body><div title");
    let skipped = String::from_utf8(rewrite(div.as_bytes(), &cuts, Position::BodyEnd)).expect("utf-8");
    assert!(skipped.ends_with("async defer></script></body></html>"));
    let whole = String::from_utf8(rewrite(page.as_bytes(), &[], Position::BodyEnd)).expect("utf-8");
    assert!(whole.ends_with("async defer></script></body></html>"));
}
