//! How far [`RewriteBody::sniff`] reads a compressed body: its decoded bytes decide, and
//! the compressed bytes it holds meanwhile stay bounded.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;

use super::{RewriteBody, SNIFF_LIMIT, SNIFF_RAW_LIMIT, Sniffed};
use crate::{Decode, Injection, Position, Syntax, Transcode, Widget};

/// A body of the given chunks, counting those taken.
struct Chunks {
    chunks: VecDeque<Bytes>,
    taken: Arc<AtomicUsize>,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunk = self.chunks.pop_front();
        self.taken.fetch_add(usize::from(chunk.is_some()), Ordering::Relaxed);
        Poll::Ready(chunk.map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// A gzip decoder behind [`Decode`], as the proxy's codec is, in steps of at most 64 KiB.
struct Gunzip(flate2::Decompress);

impl Decode for Gunzip {
    fn step(&mut self, input: &[u8]) -> std::io::Result<(usize, Bytes)> {
        let before = self.0.total_in();
        let mut out = Vec::with_capacity(64 * 1024);
        self.0.decompress_vec(input, &mut out, flate2::FlushDecompress::None).map_err(std::io::Error::other)?;
        Ok(((self.0.total_in() - before) as usize, Bytes::from(out)))
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn injection() -> Injection {
    Injection {
        widget: Arc::new(Widget::new("ast_test", "https://www.useinvent.com/button.js", &[])),
        visitor: None,
        position: Position::BodyEnd,
        syntax: Syntax::Html,
        encoding: Some(encoding_rs::UTF_8),
        nonce: None,
        max_memory: crate::REWRITER_MAX_MEMORY,
    }
}

/// Sniffs a gzip-compressed body that comes in `chunks`, decoded for a client that does not
/// take gzip: what sniffing found, how many chunks it took, and the body the client gets.
fn sniff_gzip(chunks: Vec<Bytes>) -> (Sniffed, usize, Bytes) {
    let taken = Arc::new(AtomicUsize::new(0));
    let body = Chunks { chunks: chunks.into(), taken: Arc::clone(&taken) };
    let decoder = Box::new(Gunzip(flate2::Decompress::new_gzip(15)));
    let mut body = RewriteBody::new(body, injection(), Transcode::Decode(decoder));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    runtime.block_on(async {
        let sniffed = body.sniff().await.expect("sniff");
        let during = taken.load(Ordering::Relaxed);
        (sniffed, during, body.collect().await.expect("body").to_bytes())
    })
}

/// Random words: HTML that stays large when compressed.
fn words(len: usize) -> String {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut text = String::with_capacity(len + 16);
    while text.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (0..2 + state % 9).for_each(|i| text.push(char::from(b'a' + (state >> (8 + 5 * i) & 31) as u8 % 26)));
        text.push(' ');
    }
    text
}

fn gzip(builder: flate2::GzBuilder, data: &[u8]) -> Vec<u8> {
    let mut encoder = builder.write(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[test]
fn a_compressed_page_in_one_large_read_is_judged_on_its_decoded_bytes() {
    let page = format!("<!DOCTYPE html><p>{}</p>", words(1_000_000));
    let compressed = Bytes::from(gzip(flate2::GzBuilder::new(), page.as_bytes()));
    assert!(compressed.len() > 2 * SNIFF_LIMIT, "{} bytes compressed", compressed.len());
    let (sniffed, _, body) = sniff_gzip(vec![compressed]);
    assert_eq!(sniffed, Sniffed::Page);
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert_eq!(text.matches("<invent-assistant").count(), 1);
    assert!(text.starts_with(&page), "the page, then the widget");
}

#[test]
fn compressed_bytes_that_decode_to_nothing_are_read_only_so_far() {
    // A gzip header's comment decodes to nothing: 1 MiB of it before the page.
    let comment = vec![b'c'; 1024 * 1024];
    let compressed = gzip(flate2::GzBuilder::new().comment(comment), b"<!DOCTYPE html><p>late</p>");
    let chunks: Vec<Bytes> = compressed.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    let (sniffed, taken, body) = sniff_gzip(chunks);
    assert_eq!(sniffed, Sniffed::NotPage);
    assert_eq!(taken, SNIFF_RAW_LIMIT / (16 * 1024), "reading stopped at the bound");
    assert_eq!(body, compressed, "not a page within the bound: the upstream's bytes as they came");
}
