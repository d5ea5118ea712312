//! The fast path against the oracle: random pages, cut into random chunks, must come out
//! of the rewrite byte for byte as they do when lol_html sees every byte.

use std::cell::Cell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use proptest::prelude::*;

use super::{Route, Skimmer};
use crate::{Injection, Position, RewriteBody, Syntax, Visitor, Widget};

/// Pieces of pages, chosen to reach every corner of the tokenizer and of the rewrite:
/// raw text holding `</body>`, comments and their odd endings, script escapes, attributes
/// with markup in them, foreign content, widgets already there, end tags that close
/// `<body>` from below it.
const PIECES: &[&str] = &[
    "hello ",
    "a < b ",
    "x > y",
    "&amp;",
    "\n",
    "\r\n",
    "é",
    "\0",
    " ",
    "<",
    ">",
    "\"",
    "'",
    "=",
    "/",
    "-",
    "!",
    "[",
    "]",
    "?",
    "<!DOCTYPE html>",
    "<!doctype html PUBLIC \"-//W3C//DTD>\" 'x'>",
    "<?xml version=\"1.0\"?>",
    "<html>",
    "<HTML lang=en>",
    "<head>",
    "</head>",
    "<body>",
    "<body class=\"a\">",
    "</body>",
    "</BODY >",
    "</html>",
    "<body/>",
    "</body foo='</body>'>",
    "<meta charset=utf-8>",
    "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'nonce-abc'\">",
    "<invent-assistant assistant-id=x></invent-assistant>",
    "<INVENT-ASSISTANT>",
    "</invent-assistant>",
    "<script>",
    "</script>",
    "<script src=\"https://www.useinvent.com/button.js\"></script>",
    "<script src=/app.js></script>",
    "<script>var s = '</body>';</script>",
    "<script><!--",
    "<!--<script>",
    "<script><!-- <script> </script> --></script>",
    "-->",
    "<script type=module>if (a<b) {}</script>",
    "<SCRIPT SRC=x>",
    "<script a=>",
    "</script >",
    "<script>a<!--b<script>c</script>d-->e</script>",
    "<style>",
    "</style>",
    "<style>body{}</style>",
    "<style a=>",
    "<textarea></body></textarea>",
    "<title>x</title>",
    "<xmp>",
    "</xmp>",
    "<noscript><body></noscript>",
    "<iframe>",
    "</iframe>",
    "<plaintext>",
    "<!-- c -->",
    "<!-->",
    "<!--->",
    "<!-- </body> -->",
    "<!-- a --!>",
    "<!--<!-- -->",
    "<!",
    "<!-",
    "<!-- x",
    "--",
    "->",
    "<![CDATA[ </body> ]]>",
    "]]>",
    "</ x>",
    "</>",
    "<?pi </body>?>",
    "<div>",
    "</div>",
    "<div class=\"a>b\">",
    "<p>",
    "</p>",
    "<span title='</body>'>",
    "</span>",
    "<a href=x>",
    "</a>",
    "<br>",
    "</br>",
    "<img src=x>",
    "<div/>",
    "<input value=\"\">",
    "<div a=\"b\"c>",
    "<div a=b\"c>",
    "<div =x>",
    "<div a = \"x\" b\t=\n'y'\x0C>",
    "<div a= b>",
    "<p a='b'c=d/>",
    "<img/ src=x>",
    "<i/x>",
    "<b \"q>",
    "</p a=b>",
    "</div/>",
    "<span a=\">\">",
    "<br/ >",
    // Unquoted values and `/`: a `/` in or at the end of an unquoted value is the value's,
    // long names and values cross any word a reader might take them in.
    "<a href=/x/>",
    "<img src=a/b/>",
    "<svg><circle r=1/ /><path d=M0/></svg>",
    "<p data-a-long-attribute-name=a-long-unquoted-value/with/slashes/>",
    "<p a=b\x0B/>",
    "<p a=b\x0C/>",
    "<p a-very-long-name-with-no-value/>",
    "<p a-very-long-name<?!\x0B=x>",
    "<p a=b/ c=d e/>",
    "<p a=/ >",
    "<a b=>",
    "<a b= >",
    "<h2 a=\">",
    "<o:p>",
    "</o:p>",
    "<x_y a>",
    "</x_y>",
    "<custom-element-very-long-name>",
    "</custom-element-very-long-name>",
    "<DIV>",
    "</DiV>",
    "<table>",
    "<td>",
    "<li>",
    "<ul>",
    "<h1>",
    "<b>",
    "<font color=red>",
    "<svg>",
    "</svg>",
    "<svg viewBox=\"0 0 1 1\"><path d=\"M0\"/></svg>",
    "<svg class=icon><g fill=none><circle r=1/><path d='M0'></path></g></svg>",
    "<svg><style>a</style><rect/></svg>",
    "<svg><g></svg>",
    "<svg><a href=x>y</a><br></svg>",
    "<svg/>",
    "<svg><svg></svg></svg>",
    "<svg><rect></p></svg>",
    "<svg><img></svg>",
    "<svg><o:p></o:p></svg>",
    "<svg><use href=#i /></SVG>",
    "<title>t</title>",
    "<foreignObject>",
    "</foreignObject>",
    "<desc>",
    "<desc/>",
    "</desc>",
    "<math>",
    "</math>",
    "<mi>",
    "</mi>",
    "<annotation-xml encoding=\"text/html\">",
    "<svg><script src=\"https://www.useinvent.com/button.js\"></script></svg>",
    "</annotation-xml>",
    "<font size=1>",
    "<![CDATA[x]]>",
    "<template>",
    "<select>",
    "</select>",
];

/// A page: pieces, and runs of bytes from an alphabet that makes tags and their ends.
fn page() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(PIECES).prop_map(|p| p.as_bytes().to_vec());
    let noise = "[<>/!\\-=\"' a-e\\[\\]?bodyscriptheadsvg]{1,8}".prop_map(String::into_bytes);
    prop::collection::vec(prop_oneof![6 => piece, 1 => noise], 0..60).prop_map(|parts| parts.concat())
}

/// A body that yields the page in the given chunks.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

fn chunks(page: &[u8], cuts: &[usize]) -> Chunks {
    let page = Bytes::copy_from_slice(page);
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (page.len() + 1)).collect();
    cuts.extend([0, page.len()]);
    cuts.sort_unstable();
    Chunks(cuts.windows(2).map(|w| page.slice(w[0]..w[1])).collect())
}

fn injection(position: Position, visitor: bool) -> Injection {
    Injection {
        widget: Arc::new(Widget::new("ast_test", "https://www.useinvent.com/button.js", &[])),
        visitor: visitor.then(|| {
            Arc::new(Visitor {
                user_id: "user_42".into(),
                user_hash: "45bb".into(),
                user_name: Some("Ada <&>".into()),
                user_avatar: None,
            })
        }),
        position,
        syntax: Syntax::Html,
        encoding: Some(encoding_rs::UTF_8),
        nonce: None,
        max_memory: crate::REWRITER_MAX_MEMORY,
    }
}

/// The page as the client receives it.
fn rewrite(page: &[u8], cuts: &[usize], injection: Injection, fast: bool) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let mut body = RewriteBody::new(chunks(page, cuts), injection, Default::default());
    if !fast {
        body = body.without_fast_path();
    }
    runtime.block_on(async {
        body.sniff().await.expect("sniff");
        body.collect().await.expect("body").to_bytes().to_vec()
    })
}

/// Whether a page could be checked: lol_html reading every byte is the oracle, and there
/// is none where it panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    Yes,
    /// lol_html tripped its known debug assertion ([`LOL_HTML_ASSERTION`]).
    NoOracle,
}

/// lol_html 3.0.3 trips a debug assertion of its own (an internal error, "an end tag
/// where a start tag was expected", in its dispatcher) on some markup after `<style a=>`
/// or `<script a=>`; in release builds it gives up on the page, which then passes through
/// unchanged. There is no oracle for those pages. Any other panic of the oracle is a
/// failure.
const LOL_HTML_ASSERTION: &str = "Tag should be a start tag at this point";

/// The fast path against lol_html reading every byte of the same chunks. (Not against
/// lol_html reading the page whole: lol_html itself is not always blind to chunking —
/// removing an unclosed `<invent-assistant>` takes the text of its first chunk with it.)
fn same_with_and_without_fast_path(page: &[u8], cuts: &[usize], position: Position, visitor: bool) -> Checked {
    let oracle = match std::panic::catch_unwind(|| rewrite(page, cuts, injection(position, visitor), false)) {
        Ok(oracle) => oracle,
        Err(panic) if panic.downcast_ref::<String>().is_some_and(|m| m == LOL_HTML_ASSERTION) => {
            return Checked::NoOracle;
        }
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let fast = rewrite(page, cuts, injection(position, visitor), true);
    assert_eq!(
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&oracle),
        "page {:?} cut at {cuts:?}",
        String::from_utf8_lossy(page)
    );
    Checked::Yes
}

/// A page of a unit test must be checked, or the test checks nothing.
fn check(page: &[u8], cuts: &[usize], position: Position, visitor: bool) {
    let checked = same_with_and_without_fast_path(page, cuts, position, visitor);
    assert_eq!(checked, Checked::Yes, "no oracle for {:?}", String::from_utf8_lossy(page));
}

/// Cases per run of the property test: 3,000, or `PROPTEST_CASES` for a long run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(3000)
}

/// At most this many cases in a hundred may go unchecked. Pages without an oracle are a
/// blind spot of the test. lol_html's assertion leaves about 1.4% of the generated pages
/// unchecked (276 of 20,004 in one run, 41 of 3,004 in another): 3% stays clear of that
/// by many standard deviations at 3,000 cases, and fails the test should a change of the
/// generator or of lol_html leave a larger part of the fast path unchecked.
const MAX_UNCHECKED_PERCENT: u64 = 3;

#[test]
fn the_fast_path_writes_what_lol_html_alone_writes() {
    let config = ProptestConfig { cases: cases(), ..ProptestConfig::default() };
    let (run, unchecked) = (Cell::new(0_u64), Cell::new(0_u64));
    proptest!(config, |(
        page in page(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        head_end in any::<bool>(),
        visitor in any::<bool>(),
    )| {
        let position = if head_end { Position::HeadEnd } else { Position::BodyEnd };
        run.set(run.get() + 1);
        if same_with_and_without_fast_path(&page, &cuts, position, visitor) != Checked::Yes {
            unchecked.set(unchecked.get() + 1);
        }
    });
    let (run, unchecked) = (run.get(), unchecked.get());
    eprintln!("the fast path against lol_html: {unchecked} of {run} cases unchecked (no oracle)");
    assert!(
        unchecked * 100 <= run * MAX_UNCHECKED_PERCENT,
        "{unchecked} of {run} cases could not be checked (lol_html's own assertion): more than \
         {MAX_UNCHECKED_PERCENT}%"
    );
}

/// Counts the bytes each way.
#[derive(Default)]
struct Tally {
    passed: usize,
    fed: usize,
    unseen: usize,
}

impl Route for Tally {
    fn pass(&mut self, bytes: &[u8]) {
        self.passed += bytes.len();
    }
    fn feed(&mut self, bytes: &[u8]) {
        self.fed += bytes.len();
    }
    fn feed_unseen(&mut self, bytes: &[u8]) {
        self.unseen += bytes.len();
    }
}

/// A page like a real one: a head, inline SVG icons, inline scripts and styles, comments.
fn real_page() -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shop</title>\
         <link rel=\"stylesheet\" href=\"/site.css\"><script src=\"/app.js\" defer></script>\
         <style>.card{color:red}</style></head>\n<body class=\"home\"><!-- header -->\n",
    );
    for n in 0..200 {
        page.push_str(&format!(
            "<article class=\"card\" data-id=\"{n}\"><h2><a href=\"/p/{n}\">Product {n}</a></h2>\
             <svg class=\"icon\" viewBox=\"0 0 24 24\"><title>cart</title><path d=\"M0 0h24v24H0z\"/></svg>\
             <p>Soft &amp; warm. <img src=\"/img/{n}.jpg\" alt=\"\"></p>\
             <script type=\"application/json\">{{\"id\": {n}, \"html\": \"<\\/div>\"}}</script></article>\n"
        ));
    }
    page.push_str("<footer><p>&copy; Shop</p></footer>\n</body>\n</html>\n");
    page
}

#[test]
fn lol_html_sees_little_of_a_real_page() {
    let page = real_page();
    let mut skimmer = Skimmer::default();
    let mut tally = Tally::default();
    for chunk in page.as_bytes().chunks(16 * 1024) {
        skimmer.route(chunk, &mut tally);
    }
    skimmer.finish(&mut tally);
    assert!(!skimmer.is_full());
    assert_eq!(tally.passed + tally.fed, page.len());
    // The SVG icons are most of what lol_html still reads.
    assert!(tally.fed * 4 < page.len(), "fed {} of {} bytes", tally.fed, page.len());
    check(page.as_bytes(), &[1000, 5000, 5001, 20000], Position::BodyEnd, true);
}

#[test]
fn an_existing_widget_hands_the_rest_of_the_page_to_lol_html() {
    let page = "<html><body><p>hi</p><invent-assistant></invent-assistant><p>after</p></body></html>";
    let mut skimmer = Skimmer::default();
    let mut tally = Tally::default();
    skimmer.route(page.as_bytes(), &mut tally);
    assert!(skimmer.is_full());
    assert_eq!(tally.passed, "<p>hi</p>".len());
    check(page.as_bytes(), &[], Position::BodyEnd, true);
}

#[test]
fn an_end_tag_that_closes_body_from_below_is_seen_by_lol_html() {
    // `</div>` closes the `<div>` opened before `<body>`, and `<body>` with it: lol_html
    // puts the widget before it.
    let page = "<html><div><body><p>text</p></div><p>after</p></html>";
    check(page.as_bytes(), &[13, 14, 30], Position::BodyEnd, false);
    let out = rewrite(page.as_bytes(), &[], injection(Position::BodyEnd, false), true);
    let out = String::from_utf8(out).expect("utf-8");
    assert!(out.find("<invent-assistant").expect("widget") < out.find("</div>").expect("div"), "{out}");
}

#[test]
fn a_subtree_that_closes_an_element_opened_before_it_is_fed_after_its_sync() {
    // `</div>` in the SVG closes `<div>` and `<body>` with it: lol_html must have been shown
    // the `<p>` opened before the SVG, though the skimmer's stack has lost it by the time
    // the subtree is fed.
    let page = "<html><div><body><p>x<svg><g></div><path/></g></svg><p>after</p></html>";
    for cut in 0..page.len() {
        check(page.as_bytes(), &[cut], Position::BodyEnd, false);
    }
    let out = rewrite(page.as_bytes(), &[], injection(Position::BodyEnd, false), true);
    let out = String::from_utf8(out).expect("utf-8");
    assert!(out.find("<invent-assistant").expect("widget") < out.find("</div>").expect("div"), "{out}");
}
