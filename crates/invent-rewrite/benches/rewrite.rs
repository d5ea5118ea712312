//! The rewriting body pipeline — sniff, the fast path, lol_html with the proxy's handlers,
//! the widget inserted, frames out — over 10 KB, 100 KB and 1 MB pages arriving in 16 KiB
//! chunks; beside it the same pipeline with every byte through lol_html, and raw lol_html
//! rewriting the same bytes with the same selectors (the pipeline's own overhead).
//!
//! `cargo bench -p invent-rewrite --bench rewrite`
//!
//! On a shared machine, where wall-clock times swing by a third from run to run,
//! `crates/invent-rewrite/benches/count.sh` runs each variant under callgrind instead (`REWRITE_COUNT` set):
//! instructions per page, the same on every run of the same binary.
// Test and bench code: a panic is the test failing, and its helpers are `pub` for the
// modules beside them.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::borrow::Cow;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use invent_rewrite::{Injection, Position, RewriteBody, Syntax, Visitor, Widget};
use lol_html::html_content::ContentType;
use lol_html::send::{Element, ElementContentHandlers, HtmlRewriter, Settings};
use lol_html::{Selector, element, end_tag};

const CHUNK: usize = 16 * 1024;

/// A page of about `size` bytes shaped like a real one: a head with metadata, styles and
/// scripts, then navigation, articles with links, images and SVG icons, and a footer.
fn page(size: usize) -> Vec<u8> {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Shop — Autumn collection</title>\n<link rel=\"stylesheet\" href=\"/assets/site.css?v=31\">\n\
         <script src=\"/assets/vendor.js?v=31\" defer></script>\n<script src=\"/assets/app.js?v=31\" defer></script>\n\
         <script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}</script>\n\
         </head>\n<body class=\"home\">\n<header><nav><ul>\n",
    );
    for item in ["Home", "Women", "Men", "Kids", "Sale", "Journal", "Stores", "Account"] {
        page.push_str(&format!("<li><a href=\"/{}\" class=\"nav-link\">{item}</a></li>\n", item.to_lowercase()));
    }
    page.push_str("</ul></nav></header>\n<main>\n");
    let mut n = 0;
    while page.len() + 600 < size {
        n += 1;
        page.push_str(&format!(
            "<article class=\"card\" data-id=\"{n}\">\n<h2><a href=\"/products/{n}\">Product {n}: wool &amp; cashmere</a></h2>\n\
             <img src=\"/img/p{n}.jpg\" alt=\"Product {n}\" width=\"320\" height=\"240\" loading=\"lazy\">\n\
             <p>Soft, warm and made to last. <strong>Free returns</strong> within 30 days; see \
             <a href=\"/help/returns\">our returns policy</a> for details. Price: <span class=\"price\">€{n}9.00</span></p>\n\
             <button type=\"button\" class=\"add\" data-sku=\"SKU-{n}\"><svg class=\"icon\" width=\"16\" height=\"16\" \
             viewBox=\"0 0 16 16\" aria-hidden=\"true\"><path d=\"M0 1h3l2 9h8l2-6H5\"/></svg>Add to basket</button>\n</article>\n"
        ));
    }
    page.push_str("</main>\n<footer><p>&copy; 2026 Shop Ltd.</p></footer>\n</body>\n</html>\n");
    page.into_bytes()
}

/// A body that yields the page in fixed chunks, as the upstream connection would.
struct Chunks(VecDeque<Bytes>);

impl Chunks {
    fn of(page: &Bytes) -> Chunks {
        Chunks((0..page.len()).step_by(CHUNK).map(|at| page.slice(at..(at + CHUNK).min(page.len()))).collect())
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

fn injection() -> Injection {
    Injection {
        widget: Arc::new(Widget::new("ast_bench", "https://www.useinvent.com/button.js", &[])),
        visitor: Some(Arc::new(Visitor {
            user_id: "user_42".into(),
            user_hash: "45bb144b8ebbe9876600b63739423f010f4ea3d43771ea3fee1329d463683b59".into(),
            user_name: Some("Ada".into()),
            user_avatar: None,
        })),
        position: Position::BodyEnd,
        syntax: Syntax::Html,
        encoding: None,
        nonce: None,
        max_memory: invent_rewrite::REWRITER_MAX_MEMORY,
    }
}

/// The proxy's pipeline: every output byte counted, as the client would receive them.
async fn pipeline(page: &Bytes, injection: &Injection, fast_path: bool) -> usize {
    let mut body = RewriteBody::new(Chunks::of(page), injection.clone(), Default::default());
    if !fast_path {
        body = body.without_fast_path();
    }
    body.sniff().await.expect("sniff");
    let mut out = 0;
    while let Some(frame) = body.frame().await {
        out += frame.expect("frame").into_data().map_or(0, |d| d.len());
    }
    out
}

/// lol_html alone (its `Send` flavour, as the proxy uses), with the same selectors,
/// inserting a snippet before `</body>`.
fn raw_lol_html(page: &Bytes, markup: &'static str) -> usize {
    let noop = |css: &str| {
        let selector: Selector = css.parse().expect("selector");
        (Cow::Owned(selector), ElementContentHandlers::default().element(|_: &mut Element<'_, '_>| Ok(())))
    };
    let mut out = 0;
    let mut rewriter = HtmlRewriter::new(
        Settings::new_send()
            .append_element_content_handler(noop("html"))
            .append_element_content_handler(noop("head"))
            .append_element_content_handler(element!("body", |el| {
                if let Some(handlers) = el.end_tag_handlers() {
                    handlers.push(end_tag!(move |end| {
                        end.before(markup, ContentType::Html);
                        Ok(())
                    }));
                }
                Ok(())
            }))
            .append_element_content_handler(noop("invent-assistant"))
            .append_element_content_handler(noop("meta[http-equiv]"))
            .append_element_content_handler(noop("script[src]")),
        |chunk: &[u8]| out += chunk.len(),
    );
    for chunk in page.chunks(CHUNK) {
        rewriter.write(chunk).expect("lol_html write");
    }
    rewriter.end().expect("lol_html end");
    out
}

const MARKUP: &str = "<invent-assistant assistant-id=\"ast_bench\" user-id=\"user_42\"></invent-assistant>\
                      <script src=\"https://www.useinvent.com/button.js\" async defer></script>";

const SIZES: [(&str, usize); 3] = [("10KB", 10_000), ("100KB", 100_000), ("1MB", 1_000_000)];

fn rewrite_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let injection = injection();
    let mut group = c.benchmark_group("rewrite");
    for (name, size) in SIZES {
        let page = Bytes::from(page(size));
        group.throughput(Throughput::Bytes(page.len() as u64));
        group.bench_with_input(BenchmarkId::new("pipeline", name), &page, |b, page| {
            b.iter(|| runtime.block_on(pipeline(page, &injection, true)));
        });
        group.bench_with_input(BenchmarkId::new("pipeline_without_fast_path", name), &page, |b, page| {
            b.iter(|| runtime.block_on(pipeline(page, &injection, false)));
        });
        group.bench_with_input(BenchmarkId::new("lol_html", name), &page, |b, page| {
            b.iter(|| raw_lol_html(page, MARKUP));
        });
    }
    group.finish();
}

/// `REWRITE_COUNT=VARIANT,SIZE,RUNS`: runs one variant (`pipeline`,
/// `pipeline_without_fast_path` or `lol_html`) on one page size RUNS times through
/// [`measured`], for callgrind to count (`--toggle-collect=*measured*`).
fn count_instructions(spec: &str) {
    let fields: Vec<&str> = spec.split(',').collect();
    let [variant, size, runs] = fields[..] else { panic!("REWRITE_COUNT=VARIANT,SIZE,RUNS, not {spec:?}") };
    let (_, bytes) = SIZES.iter().find(|(name, _)| *name == size).expect("size: 10KB, 100KB or 1MB");
    let page = Bytes::from(page(*bytes));
    let runs: usize = runs.parse().expect("RUNS: a number");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let injection = injection();
    let mut out = 0;
    for _ in 0..runs {
        out += measured(variant, &page, &injection, &runtime);
    }
    println!("{variant} {size} {} bytes {runs} runs {out} bytes out", page.len());
}

#[inline(never)]
fn measured(variant: &str, page: &Bytes, injection: &Injection, runtime: &tokio::runtime::Runtime) -> usize {
    match variant {
        "pipeline" => runtime.block_on(pipeline(page, injection, true)),
        "pipeline_without_fast_path" => runtime.block_on(pipeline(page, injection, false)),
        "lol_html" => raw_lol_html(page, MARKUP),
        other => panic!("no variant {other}"),
    }
}

criterion_group!(benches, rewrite_throughput);

fn main() {
    if let Ok(spec) = std::env::var("REWRITE_COUNT") {
        return count_instructions(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
