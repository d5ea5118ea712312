//! The doctype scan against lol_html's own tokenizer: random prologs, fed in random chunks,
//! must open with a doctype exactly when lol_html's first token that is not a comment or
//! white space is the doctype.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use lol_html::html_content::{Comment, Doctype, Element, TextChunk};
use lol_html::{HtmlRewriter, Settings, doc_comments, doc_text, doctype, element};
use proptest::prelude::*;

use super::*;

/// A token lol_html reports, by its place in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Doctype,
    Comment,
    /// A piece of text; `blank` if it is all HTML white space.
    Text {
        blank: bool,
    },
    StartTag,
}

fn is_blank(text: &str) -> bool {
    text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C'))
}

/// Every token lol_html reports to content handlers, with the bytes it came from. Only end
/// tags (no handler sees an end tag whose start tag it did not match) and `</>` (which is
/// no token at all) are left out: they are the gaps between these.
fn tokens(input: &[u8]) -> Vec<(Range<usize>, Token)> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let record = |token: Token| {
        let seen = Rc::clone(&seen);
        move |at: Range<usize>| seen.borrow_mut().push((at, token))
    };
    let (on_doctype, on_comment, on_tag) = (record(Token::Doctype), record(Token::Comment), record(Token::StartTag));
    let on_text = Rc::clone(&seen);
    let settings = Settings::new()
        .append_element_content_handler(element!("*", move |el: &mut Element<'_, '_>| {
            on_tag(el.source_location().bytes());
            Ok(())
        }))
        .append_document_content_handler(doctype!(move |d: &mut Doctype<'_>| {
            on_doctype(d.source_location().bytes());
            Ok(())
        }))
        .append_document_content_handler(doc_comments!(move |c: &mut Comment<'_>| {
            on_comment(c.source_location().bytes());
            Ok(())
        }))
        .append_document_content_handler(doc_text!(move |t: &mut TextChunk<'_>| {
            let token = Token::Text { blank: is_blank(t.as_str()) };
            on_text.borrow_mut().push((t.source_location().bytes(), token));
            Ok(())
        }))
        .with_strict(false);
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    rewriter.write(input).expect("lol_html reads any input");
    rewriter.end().expect("lol_html reads any input");
    let mut tokens = seen.take();
    tokens.retain(|(at, _)| !at.is_empty());
    tokens.sort_by_key(|(at, _)| at.start);
    tokens
}

/// The oracle: whether lol_html, reading `input` whole (after a UTF-8 BOM, which the
/// decoder takes off before the tokenizer sees the page), finds a doctype before any token
/// other than comments and white space. The tree builder's "initial" insertion mode
/// ignores exactly those; anything else ends it.
fn lol_html_opens_with_doctype(input: &[u8]) -> bool {
    let input = input.strip_prefix(UTF8_BOM).unwrap_or(input);
    let mut at = 0;
    for (range, token) in tokens(input) {
        // A gap is end tags and `</>`s (or a tag cut off by the end of the input, which
        // is dropped): only `</>`, nothing at all, may come before the doctype.
        if range.start > at && !input[at..range.start].chunks(3).all(|gap| gap == b"</>") {
            return false;
        }
        match token {
            Token::Doctype => return true,
            Token::Comment | Token::Text { blank: true } => {}
            Token::Text { blank: false } | Token::StartTag => return false,
        }
        at = range.end;
    }
    false
}

/// The scan's answer for `input` fed in the chunks `cuts` make: once decided it stays so;
/// undecided at the end of the page means no doctype.
fn scanned(input: &[u8], cuts: &[usize]) -> bool {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.extend([0, input.len()]);
    cuts.sort_unstable();
    let mut scan = DoctypeScan::default();
    let mut answer = None;
    for window in cuts.windows(2) {
        let decided = scan.scan(&input[window[0]..window[1]]);
        assert!(answer.is_none() || decided.is_none(), "decided twice");
        answer = answer.or(decided);
    }
    answer.unwrap_or(false)
}

/// Pieces of prologs: white space and what only looks like it, BOMs, every form of comment
/// and bogus comment with their odd endings, partial and tricky variants, text, tags, end
/// tags, doctypes.
const PIECES: &[&str] = &[
    " ",
    "\t",
    "\n",
    "\r\n",
    "\x0C",
    "\x0B",
    "\u{A0}",
    "\u{FEFF}",
    "\u{2028}",
    "\0",
    "x",
    "é",
    "&amp;",
    "<",
    ">",
    "-",
    "!",
    "?",
    "/",
    "[",
    "]",
    "<!-- c -->",
    "<!---->",
    "<!-->",
    "<!--->",
    "<!---->-->",
    "<!-- a --!>",
    "<!-- a --!-->",
    "<!-- a --! -->",
    "<!-- a ---->",
    "<!-- a - -- --->",
    "<!-- a -- b -->",
    "<!--<!-- -->",
    "<!--<!-->",
    "<!--<!--->",
    "<!-- <!- -->",
    "<!-- x",
    "<!--",
    "<!-",
    "<!",
    "-->",
    "--!>",
    "->",
    "--",
    "<!>",
    "<!DOC>",
    "<!doc",
    "<!DOCTYP>",
    "<!DOCTYPO html>",
    "<!x>",
    "<!->",
    "<!-x-->",
    "<!- ->",
    "<![CDATA[x]]>",
    "<![CDATA[x>]]>",
    "<![CDATA[",
    "<![cdata[x]]>",
    "]]>",
    "<?xml version=\"1.0\"?>",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    "<?>",
    "<?",
    "<?-->",
    "</>",
    "</",
    "</ x>",
    "</1>",
    "</<>",
    "</->",
    "</!-->",
    "</ <!doctype html>",
    "</x>",
    "</X y=\">\">",
    "</html>",
    "</body>",
    "<html>",
    "<body>",
    "<p>x",
    "<a",
    "<svg><![CDATA[x]]></svg>",
    "<1>",
    "< p>",
    "<!DOCTYPE html>",
    "<!doctype html>",
    "<!DOCTYPE>",
    "<!DOCTYPEhtml>",
    "<!DOCTYPE",
    "<!doctype",
    "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"x\">",
];

/// A doctype, or the start of one, in any case.
fn doctype_word() -> impl Strategy<Value = Vec<u8>> {
    "<![dD][oO][cC][tT][yY][pP][eE]( html)?>?".prop_map(String::into_bytes)
}

/// A prolog, and what may follow it: pieces, doctypes and runs of the bytes that make
/// markup.
fn prolog() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(PIECES).prop_map(|p| p.as_bytes().to_vec());
    let noise = "[<>!?/\\- \n\\[\\]dDoOcCtTyYpPeEx]{1,6}".prop_map(String::into_bytes);
    let bom = prop::bool::weighted(0.2).prop_map(|bom| if bom { UTF8_BOM.to_vec() } else { Vec::new() });
    let parts = prop::collection::vec(prop_oneof![8 => piece, 2 => doctype_word(), 1 => noise], 0..14);
    (bom, parts).prop_map(|(bom, parts)| [bom, parts.concat()].concat())
}

/// Cases per run of the property test: 5,000, or `PROPTEST_CASES` for a long run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(5000)
}

/// Cases proptest may reject (`prop_assume!`) in a run: 3% of them. The generator makes
/// prologs of at most a thousand bytes, far below [`MAX_PROLOG`], so none is rejected
/// today; should one be, each is replaced by another case, and more than this fails the
/// run ("Too many global rejects", with the count and where).
fn max_rejects() -> u32 {
    cases() * 3 / 100
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_global_rejects: max_rejects(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_scan_reads_the_prolog_as_lol_html_does(
        input in prolog(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        prop_assume!(input.len() < MAX_PROLOG);
        let expected = lol_html_opens_with_doctype(&input);
        let shown = String::from_utf8_lossy(&input);
        prop_assert_eq!(opens_with_doctype(&input).unwrap_or(false), expected, "whole: {:?}", shown);
        prop_assert_eq!(scanned(&input, &cuts), expected, "{:?} cut at {:?}", shown, cuts);
    }
}

#[test]
fn the_oracle_sees_what_the_tokenizer_emits() {
    let cases: &[(&str, bool)] = &[
        ("<!DOCTYPE html><p>x", true),
        ("\u{FEFF} <!-- a --> <!doctype html>", true),
        ("x<!DOCTYPE html>", false),
        ("</x><!DOCTYPE html>", false),
        ("</><!DOCTYPE html>", true),
        ("</></></><!DOCTYPE html>", true),
        ("</></x></><!DOCTYPE html>", false),
        ("<p><!DOCTYPE html>", false),
        ("<!-- cut", false),
        ("<a", false),
    ];
    for (input, expected) in cases {
        assert_eq!(lol_html_opens_with_doctype(input.as_bytes()), *expected, "{input}");
    }
}

#[test]
fn comments_and_bogus_comments_come_before_a_doctype() {
    let pages: &[&str] = &[
        "<!DOCTYPE html><p>x",
        "\u{FEFF}<!doctype html>",
        "\n  <!-- generated --> <!-- again -->\n<!DocType html>",
        "<?xml version=\"1.0\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\">",
        "<!><!DOCTYPE html><p>x",
        "<!DOC><!doctype html>",
        "<!x y><!doctype html>",
        "<?><!doctype html>",
        "</ x><!doctype html>",
        "</1><!doctype html>",
        "</><!doctype html>",
        "<![CDATA[x]]><!doctype html>",
        "<!---->\n<!-- --!><!doctype html>",
        "<!-- a -- b --- c --!- d ---!> <!doctype html>",
        "<!-->\n<!--->\n<!doctype html>",
        "<!-- a --!><!doctype html>",
        "<!--<!-- x --><!doctype html>",
        "<!DOCTYPE>",
        "<!DOCTYPEhtml>",
    ];
    for page in pages {
        assert_eq!(opens_with_doctype(page.as_bytes()), Some(true), "{page}");
        assert!(lol_html_opens_with_doctype(page.as_bytes()), "{page}");
    }
    let fragments: &[&str] = &[
        "<div><!DOCTYPE html>",
        "hello",
        "<!-- x --><p>",
        "<!-->--><!DOCTYPE html>",
        "<!--->--><!DOCTYPE html>",
        "<![CDATA[x>]]><!DOCTYPE html>",
        "</x><!DOCTYPE html>",
        "\u{FEFF}\u{FEFF}<!DOCTYPE html>",
        "\x0B<!DOCTYPE html>",
        "< !DOCTYPE html>",
        "\u{A0}<!DOCTYPE html>",
    ];
    for fragment in fragments {
        assert_eq!(opens_with_doctype(fragment.as_bytes()), Some(false), "{fragment}");
        assert!(!lol_html_opens_with_doctype(fragment.as_bytes()), "{fragment}");
    }
    let undecided: &[&[u8]] = &[
        b"",
        b"\xEF\xBB",
        b"  <",
        b"<!DOC",
        b"<!-- not closed",
        b"<?xml ",
        b"<!",
        b"</",
        b"<!-- --!",
        b"<!-",
        b"<!docx",
    ];
    for head in undecided {
        assert_eq!(opens_with_doctype(head), None, "{}", String::from_utf8_lossy(head));
    }
}

#[test]
fn the_answer_is_the_same_however_the_bytes_are_split() {
    let page = b"\xEF\xBB\xBF <!-- a -- b --> <?xml?> <!> </ x> <!-->  <!doctype html><html>";
    for cut in 0..page.len() {
        for second in cut..page.len() {
            assert!(scanned(page, &[cut, second]), "cut at {cut} and {second}");
        }
    }
    let mut scan = DoctypeScan::default();
    assert_eq!(scan.scan(page), Some(true));
    assert_eq!(scan.scan(b"more"), None, "decided once");
}

#[test]
fn a_prolog_longer_than_the_bound_has_no_doctype() {
    let mut endless = DoctypeScan::default();
    assert_eq!(endless.scan(&[b"<!--".as_slice(), &[b'x'; MAX_PROLOG]].concat()), Some(false));
    let mut spaces = DoctypeScan::default();
    for _ in 0..MAX_PROLOG - 1 {
        assert_eq!(spaces.scan(b" "), None);
    }
    assert_eq!(spaces.scan(b" <!doctype html>"), Some(false));
}
