//! The rewriter fed random pages cut at random chunk boundaries: never a panic, at most
//! one widget, and the output with the widget taken out is the input, byte for byte.
#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use invent_proxy::config::{Config, Position};
use invent_proxy::inject::{Syntax, Widget};
use invent_proxy::rewrite::{Injection, REWRITER_MAX_MEMORY, RewriteBody};
use libfuzzer_sys::fuzz_target;

struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (cuts, page) = input;
    let page = Bytes::from(page);
    let mut at: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (page.len() + 1)).collect();
    at.extend([0, page.len()]);
    at.sort_unstable();
    let chunks = Chunks(at.windows(2).map(|w| page.slice(w[0]..w[1])).collect());
    let yaml = "upstream: { url: http://127.0.0.1:9 }\nassistant: { id: ast_fuzz }\n";
    let config = Config::from_yaml(yaml, "fuzz.yaml", std::path::Path::new(".")).expect("config");
    let widget = Widget::new(&config.assistant);
    let snippet = widget.markup(None, Syntax::Html, None, true, true);
    let injection = Injection {
        widget: std::sync::Arc::new(widget),
        visitor: None,
        position: Position::BodyEnd,
        syntax: Syntax::Html,
        encoding: Some(encoding_rs::UTF_8),
        nonce: None,
        max_memory: REWRITER_MAX_MEMORY,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let output = runtime.block_on(async {
        let mut body = RewriteBody::new(chunks, injection, Default::default());
        body.sniff().await.expect("sniff");
        body.collect().await.expect("body").to_bytes()
    });
    let text = String::from_utf8_lossy(&output);
    assert!(
        text.matches("<invent-assistant").count()
            <= 1 + page.windows(17).filter(|w| w.eq_ignore_ascii_case(b"<invent-assistant")).count()
    );
    // A page that mentions the widget or its script may have it changed or not added.
    let lower = page.to_ascii_lowercase();
    if lower.windows(6).any(|w| w == b"invent") {
        return;
    }
    let removed = match output.windows(snippet.len()).position(|w| w == snippet.as_bytes()) {
        Some(i) => [&output[..i], &output[i + snippet.len()..]].concat(),
        None => output.to_vec(),
    };
    assert_eq!(removed, page.to_vec(), "the page with the widget taken out is the page");
});
