//! What the body reports it put into a page ([`RewriteBody::inserted`]), for `explain`:
//! the markup exactly as it went in, the place, the nonce and where it came from, and the
//! page's own element as it went out.
// Test code: a panic is the test failing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use invent_rewrite::{Injection, Inserted, NonceSource, Place, Position, RewriteBody, Syntax, Visitor, Widget};

const SCRIPT: &str =
    "<script type=\"text/javascript\" src=\"https://www.useinvent.com/button.js\" async defer></script>";

/// Rewrites `page` at `position` for `visitor`, under a header policy nonce if any: the
/// page that comes out and what the body reports it inserted.
fn rewrite(page: &'static str, position: Position, nonce: Option<&str>) -> (String, Option<Inserted>) {
    let visitor = Visitor { user_id: "42".into(), user_hash: "ab".into(), user_name: None, user_avatar: None };
    let injection = Injection {
        widget: Arc::new(Widget::new("ast_test", "https://www.useinvent.com/button.js", &[])),
        visitor: Some(Arc::new(visitor)),
        position,
        syntax: Syntax::Html,
        encoding: Some(encoding_rs::UTF_8),
        nonce: nonce.map(str::to_owned),
        max_memory: invent_rewrite::REWRITER_MAX_MEMORY,
    };
    let mut body = RewriteBody::new(Full::new(Bytes::from_static(page.as_bytes())), injection, Default::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        body.sniff().await.unwrap();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.extend_from_slice(frame.unwrap().data_ref().unwrap());
        }
        (String::from_utf8(out).unwrap(), body.inserted())
    })
}

#[test]
fn the_markup_is_reported_as_it_went_in_with_its_place_and_nonce() {
    let (page, inserted) = rewrite("<!DOCTYPE html><body><p>x</p></body>", Position::BodyEnd, Some("n0nce"));
    let inserted = inserted.unwrap();
    assert_eq!((inserted.place, inserted.own_element.as_deref()), (Place::BeforeBodyEnd, None));
    assert_eq!(inserted.nonce, Some(("n0nce".to_owned(), NonceSource::Header)));
    assert!(
        inserted.markup.starts_with("<invent-assistant assistant-id=\"ast_test\" user-id=\"42\" user-hash=\"ab\">")
    );
    assert_eq!(page, format!("<!DOCTYPE html><body><p>x</p>{}</body>", inserted.markup));

    let (page, inserted) = rewrite("<html><head></head><body></body></html>", Position::HeadEnd, None);
    let inserted = inserted.unwrap();
    assert_eq!((inserted.place, inserted.nonce), (Place::BeforeHeadEnd, None));
    assert!(page.contains(&format!("{}</head>", inserted.markup)));

    let (page, inserted) = rewrite("<!DOCTYPE html><body><p>never closed", Position::BodyEnd, None);
    let inserted = inserted.unwrap();
    assert_eq!(inserted.place, Place::DocumentEnd);
    assert!(page.ends_with(&inserted.markup));
}

#[test]
fn a_page_with_its_own_element_reports_it_completed_and_the_meta_nonce() {
    let page = "<!DOCTYPE html><head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'nonce-m1'\">\
                </head><body><invent-assistant theme-appearance=\"dark\"></invent-assistant></body>";
    let (out, inserted) = rewrite(page, Position::BodyEnd, None);
    let inserted = inserted.unwrap();
    let own = "<invent-assistant theme-appearance=\"dark\" assistant-id=\"ast_test\" user-id=\"42\" user-hash=\"ab\">";
    assert_eq!(inserted.own_element.as_deref(), Some(own));
    assert!(out.contains(own), "{out}");
    assert_eq!(inserted.nonce, Some(("m1".to_owned(), NonceSource::Meta)));
    assert_eq!(inserted.markup, SCRIPT.replacen("<script", "<script nonce=\"m1\"", 1), "the script alone");

    let (_, nothing) = rewrite("<li>a fragment</li>", Position::BodyEnd, None);
    assert_eq!(nothing, None);
}
