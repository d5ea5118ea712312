//! Compressed pages through the rewrite, as the proxy runs them: a gzip page (level 6, as
//! origins compress) spliced for a client that takes gzip, the same page decoded for one
//! that does not, and the plain page, over 10 KB, 30 KB and 100 KB pages in 16 KiB chunks;
//! beside them the decoders alone (zlib-rs through flate2, and the splice's own).
//!
//! `cargo bench --bench codec`
//!
//! `benches/count.sh codec` counts each variant in instructions with callgrind instead
//! (`CODEC_COUNT` set), the same on every run of the same binary.
// Bench code: a panic is the bench failing.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use invent_proxy::codec::{Coding, transcode};
use invent_rewrite::{Injection, Position, RewriteBody, Syntax, Transcode, Widget};

const CHUNK: usize = 16 * 1024;

/// A page of about `size` bytes shaped like a real one (as the rewriter's own bench).
fn page(size: usize) -> Vec<u8> {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Shop — Autumn collection</title>\n<link rel=\"stylesheet\" href=\"/assets/site.css?v=31\">\n\
         <script src=\"/assets/app.js?v=31\" defer></script>\n</head>\n<body class=\"home\">\n<main>\n",
    );
    let mut n = 0;
    while page.len() + 600 < size {
        n += 1;
        page.push_str(&format!(
            "<article class=\"card\" data-id=\"{n}\">\n<h2><a href=\"/products/{n}\">Product {n}: wool &amp; cashmere</a></h2>\n\
             <img src=\"/img/p{n}.jpg\" alt=\"Product {n}\" width=\"320\" height=\"240\" loading=\"lazy\">\n\
             <p>Soft, warm and made to last. <strong>Free returns</strong> within {} days; see \
             <a href=\"/help/returns\">our returns policy</a> for details. Price: <span class=\"price\">€{n}9.00</span></p>\n\
             <button type=\"button\" class=\"add\" data-sku=\"SKU-{}\"><svg class=\"icon\" width=\"16\" height=\"16\" \
             viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path d=\"M0 1h3l2 9h8l2-6H5\"/></svg>Add to basket</button>\n</article>\n",
            n * 7 % 31,
            n * 7919 % 10007
        ));
    }
    page.push_str("</main>\n<footer><p>&copy; 2026 Shop Ltd.</p></footer>\n</body>\n</html>\n");
    page.into_bytes()
}

fn gzip(page: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(page).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

/// A body that yields the bytes in fixed chunks, as the upstream connection would.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

fn chunks(bytes: &Bytes) -> Chunks {
    Chunks((0..bytes.len()).step_by(CHUNK).map(|at| bytes.slice(at..(at + CHUNK).min(bytes.len()))).collect())
}

fn injection() -> Injection {
    Injection {
        widget: Arc::new(Widget::new("ast_bench", "https://www.useinvent.com/button.js", &[])),
        visitor: None,
        position: Position::BodyEnd,
        syntax: Syntax::Html,
        encoding: None,
        nonce: None,
        max_memory: invent_rewrite::REWRITER_MAX_MEMORY,
    }
}

/// The rewrite of `body` with `transcode`: the bytes the client gets.
async fn rewrite(body: &Bytes, transcode: Transcode) -> usize {
    let mut body = RewriteBody::new(chunks(body), injection(), transcode);
    body.sniff().await.unwrap();
    let mut out = 0;
    while let Some(frame) = body.frame().await {
        out += frame.unwrap().into_data().map_or(0, |d| d.len());
    }
    out
}

/// Decodes `body` with the codec's decoder alone.
fn decode(body: &Bytes, transcode: Transcode) -> usize {
    let mut decoder: Box<dyn invent_rewrite::Decode> = match transcode {
        Transcode::Decode(decoder) => decoder,
        Transcode::Recode(codec) => codec,
        Transcode::Identity => unreachable!(),
    };
    let mut out = 0;
    for chunk in body.chunks(CHUNK) {
        let mut rest = chunk;
        loop {
            let (used, decoded) = decoder.step(rest).unwrap();
            out += decoded.len();
            rest = &rest[used..];
            if rest.is_empty() && decoded.is_empty() {
                break;
            }
        }
    }
    decoder.finish().unwrap();
    out
}

const SIZES: [(&str, usize); 3] = [("10KB", 10_000), ("30KB", 30_000), ("100KB", 100_000)];
const VARIANTS: [&str; 5] = ["splice", "decoded", "plain", "inflate_zlib", "inflate_splice"];

/// One run of `variant` over the page (`plain`) and its gzip (`gzipped`).
#[inline(never)]
fn measured(variant: &str, plain: &Bytes, gzipped: &Bytes, runtime: &tokio::runtime::Runtime) -> usize {
    let codec = |accepts| transcode(Coding::Gzip, accepts).unwrap();
    match variant {
        "splice" => runtime.block_on(rewrite(gzipped, codec(true))),
        "decoded" => runtime.block_on(rewrite(gzipped, codec(false))),
        "plain" => runtime.block_on(rewrite(plain, Transcode::Identity)),
        "inflate_zlib" => decode(gzipped, codec(false)),
        "inflate_splice" => decode(gzipped, codec(true)),
        other => panic!("no variant {other}"),
    }
}

fn codec_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("codec");
    for (name, size) in SIZES {
        let plain = Bytes::from(page(size));
        let gzipped = gzip(&plain);
        group.throughput(Throughput::Bytes(plain.len() as u64));
        for variant in VARIANTS {
            group.bench_with_input(BenchmarkId::new(variant, name), &(), |b, ()| {
                b.iter(|| measured(variant, &plain, &gzipped, &runtime));
            });
        }
    }
    group.finish();
}

/// `CODEC_COUNT=VARIANT,SIZE,RUNS`: runs one variant on one page size RUNS times through
/// [`measured`], for callgrind to count (`--toggle-collect=*measured*`).
fn count_instructions(spec: &str) {
    let fields: Vec<&str> = spec.split(',').collect();
    let [variant, size, runs] = fields[..] else { panic!("CODEC_COUNT=VARIANT,SIZE,RUNS, not {spec:?}") };
    let (_, bytes) = SIZES.iter().find(|(name, _)| *name == size).expect("size: 10KB, 30KB or 100KB");
    let plain = Bytes::from(page(*bytes));
    let gzipped = gzip(&plain);
    let runs: usize = runs.parse().expect("RUNS: a number");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut out = 0;
    for _ in 0..runs {
        out += measured(variant, &plain, &gzipped, &runtime);
    }
    println!("{variant} {size} {} bytes ({} gzipped) {runs} runs {out} bytes out", plain.len(), gzipped.len());
}

criterion_group!(benches, codec_throughput);

fn main() {
    if let Ok(spec) = std::env::var("CODEC_COUNT") {
        return count_instructions(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
