//! Pages in every ASCII-compatible encoding get the widget with every original byte kept;
//! pages the rewriter cannot read pass through untouched.

use bytes::Bytes;
use http::StatusCode;

use crate::support::*;

/// `before` + the widget + `after`, the way the proxy should deliver a page.
fn with_widget(before: &[u8], widget: &str, after: &[u8]) -> Vec<u8> {
    [before, widget.as_bytes(), after].concat()
}

async fn serve(content_type: &'static str, page: Vec<u8>) -> Upstream {
    spawn_upstream(move |_| {
        let page = page.clone();
        async move { respond(StatusCode::OK, content_type, Bytes::from(page)) }
    })
    .await
}

#[tokio::test]
async fn a_windows_1252_page_keeps_its_bytes_and_gets_escaped_identity() {
    let before = b"<!DOCTYPE html><html><body><p>Caf\xe9 \x80 5 \x93quoted\x94</p>".to_vec();
    let after = b"</body></html>".to_vec();
    let upstream = serve("text/html; charset=windows-1252", [&before[..], &after[..]].concat()).await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let token = tokens::hs256(&tokens::with(tokens::claims("zoe"), "name", "Zoë €"));
    let page = get_as(&proxy, "/", &token).await;
    let hash = invent_proxy::identity::user_hash(SECRET_KEY, "zoe");
    let zoe = invent_rewrite::Visitor {
        user_id: "zoe".into(),
        user_hash: hash.clone(),
        user_name: Some("Zoë €".into()),
        user_avatar: None,
    };
    let widget = format!(
        "<invent-assistant {} assistant-id=\"ast_test\" user-id=\"zoe\" user-hash=\"{hash}\" user-name=\"Zo&#xeb; &#x20ac;\"></invent-assistant>{WIDGET_SCRIPT}",
        turbo_attributes(&zoe)
    );
    assert_eq!(page.body, with_widget(&before, &widget, &after));
}

#[tokio::test]
async fn a_shift_jis_page_keeps_every_byte() {
    let (text, _, _) = encoding_rs::SHIFT_JIS.encode("<p>表示テスト — ソフト</p>");
    assert!(text.contains(&b'\\'), "Shift_JIS trail bytes that look like ASCII are part of the test");
    let before = [&b"<!DOCTYPE html><html><head><title>x</title></head><body>"[..], &text].concat();
    let after = b"</body></html>".to_vec();
    let upstream = serve("text/html; charset=Shift_JIS", [&before[..], &after[..]].concat()).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let widget = WIDGET.to_owned();
    assert_eq!(get(&proxy, "/").await.body, with_widget(&before, &widget, &after));
}

#[tokio::test]
async fn a_meta_charset_decides_when_the_header_does_not() {
    for meta in [
        "<meta charset=\"windows-1252\">",
        "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">",
    ] {
        let before = format!("<!DOCTYPE html><html><head>{meta}</head><body>").into_bytes();
        let before = [&before[..], b"Andr\xe9 na\xefve"].concat();
        let after = b"</body></html>".to_vec();
        let upstream = serve("text/html", [&before[..], &after[..]].concat()).await;
        let proxy = spawn_default_proxy(upstream.addr).await;
        let widget = WIDGET.to_owned();
        assert_eq!(get(&proxy, "/").await.body, with_widget(&before, &widget, &after), "{meta}");
    }
}

#[tokio::test]
async fn a_utf8_bom_page_is_rewritten() {
    let before = "\u{feff}<!DOCTYPE html><html><body>naïve".as_bytes().to_vec();
    let after = b"</body></html>".to_vec();
    let upstream = serve("text/html", [&before[..], &after[..]].concat()).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let widget = WIDGET.to_owned();
    assert_eq!(get(&proxy, "/").await.body, with_widget(&before, &widget, &after));
}

#[tokio::test]
async fn pages_the_rewriter_cannot_read_pass_through_untouched() {
    let utf16: Vec<u8> =
        "\u{feff}<!DOCTYPE html><html><body>hi</body></html>".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let (jis, _, _) = encoding_rs::ISO_2022_JP.encode("<!DOCTYPE html><html><body>日本語</body></html>");
    for (content_type, page) in [
        ("text/html", utf16.clone()),
        ("text/html; charset=utf-16", utf16[2..].to_vec()),
        ("text/html; charset=iso-2022-jp", jis.into_owned()),
    ] {
        let upstream = serve(content_type, page.clone()).await;
        let proxy = spawn_default_proxy(upstream.addr).await;
        assert_eq!(get(&proxy, "/").await.body, page, "{content_type}");
    }
}
