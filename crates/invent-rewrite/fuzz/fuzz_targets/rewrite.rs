//! Random pages cut at random chunk boundaries, through the whole rewrite twice: with the
//! fast path, and with lol_html reading every byte. The two must give the same bytes, on
//! every page (those that already carry a widget or its script included); the page must
//! come out at most one widget richer; and on a page that mentions no widget, the output
//! with the widget taken out is the page, byte for byte.
#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use invent_rewrite::{Injection, Position, REWRITER_MAX_MEMORY, RewriteBody, Syntax, Visitor, Widget};
use libfuzzer_sys::fuzz_target;

struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

const SCRIPT: &str = "https://www.useinvent.com/button.js";

fn injection(position: Position, signed_in: bool) -> Injection {
    let visitor = Visitor {
        user_id: "user_42".into(),
        user_hash: "45bb".into(),
        user_name: Some("Ada <&>".into()),
        user_avatar: None,
    };
    Injection {
        // Kept across Turbo visits, as the proxy makes it by default.
        widget: Arc::new(Widget::new("ast_fuzz", SCRIPT, &[]).kept_across_visits(true)),
        visitor: signed_in.then(|| Arc::new(visitor)),
        position,
        syntax: Syntax::Html,
        encoding: Some(encoding_rs::UTF_8),
        nonce: None,
        max_memory: REWRITER_MAX_MEMORY,
    }
}

/// The page as the client gets it, its chunks cut at `at`.
fn rewrite(page: &Bytes, at: &[usize], injection: Injection, fast: bool) -> Bytes {
    let chunks = Chunks(at.windows(2).map(|w| page.slice(w[0]..w[1])).collect());
    let mut body = RewriteBody::new(chunks, injection, Default::default());
    if !fast {
        body = body.without_fast_path();
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    runtime.block_on(async {
        body.sniff().await.expect("sniff");
        body.collect().await.expect("body").to_bytes()
    })
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| w.eq_ignore_ascii_case(needle)).count()
}

fuzz_target!(|input: (Vec<u16>, Vec<u8>, u8)| {
    let (cuts, page, flags) = input;
    let page = Bytes::from(page);
    let mut at: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (page.len() + 1)).collect();
    at.extend([0, page.len()]);
    at.sort_unstable();
    let position = if flags & 1 == 0 { Position::BodyEnd } else { Position::HeadEnd };
    let signed_in = flags & 2 != 0;
    let fast = rewrite(&page, &at, injection(position, signed_in), true);
    let every_byte = rewrite(&page, &at, injection(position, signed_in), false);
    assert!(fast == every_byte, "the fast path differs from lol_html reading every byte");
    assert!(count(&fast, b"<invent-assistant") <= 1 + count(&page, b"<invent-assistant"));
    if count(&page, b"invent") == 0 {
        let injection = injection(position, signed_in);
        let snippet = injection.widget.markup(injection.visitor.as_deref(), Syntax::Html, None, true, true);
        let removed = match fast.windows(snippet.len()).position(|w| w == snippet.as_bytes()) {
            Some(i) => [&fast[..i], &fast[i + snippet.len()..]].concat(),
            None => fast.to_vec(),
        };
        assert_eq!(removed, page.to_vec(), "the page with the widget taken out is the page");
    }
});
