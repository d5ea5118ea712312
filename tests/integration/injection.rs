//! Which responses get the widget, where it goes, and what happens to their headers.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;

use crate::support::*;

const PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Shop</title></head><body><h1>Shop</h1></body></html>\n";
const WIDGET: &str = "<invent-assistant assistant-id=\"ast_test\"></invent-assistant>\
<script type=\"text/javascript\" src=\"https://www.useinvent.com/button.js\" async defer></script>";

#[tokio::test]
async fn the_widget_goes_before_the_body_end_tag() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "")).await;
    let page = get(&proxy, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text(), PAGE.replace("</body>", &format!("{WIDGET}</body>")));
}

#[tokio::test]
async fn head_end_puts_the_widget_before_the_head_end_tag() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "inject:\n  position: head_end\n")).await;
    let page = get(&proxy, "/").await;
    assert_eq!(page.text(), PAGE.replace("</head>", &format!("{WIDGET}</head>")));
}

#[tokio::test]
async fn a_page_without_a_body_end_tag_gets_the_widget_at_the_end() {
    let legacy = "<html><body><p>never closed\n";
    let upstream = spawn_html_upstream(legacy).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "")).await;
    assert_eq!(get(&proxy, "/").await.text(), format!("{legacy}{WIDGET}"));
}

#[tokio::test]
async fn theme_attributes_appear_only_when_set() {
    let upstream = spawn_html_upstream(PAGE).await;
    let theme =
        "  theme:\n    appearance: dark\n    button_background_color: \"#6366f1\"\n    button_color: \"#fff\"\n";
    let yaml = proxy_yaml(upstream.addr, "").replace("  id: ast_test\n", &format!("  id: ast_test\n{theme}"));
    let proxy = spawn_proxy(&yaml).await;
    let page = get(&proxy, "/").await.text();
    assert!(page.contains(
        "<invent-assistant assistant-id=\"ast_test\" theme-appearance=\"dark\" \
         theme-button-background-color=\"#6366f1\" theme-button-color=\"#fff\"></invent-assistant>"
    ));
}

#[tokio::test]
async fn fragments_pass_through_untouched() {
    let fragment = "<div class=\"cart\"><p>2 items</p></div>";
    let upstream = spawn_html_upstream(fragment).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "")).await;
    assert_eq!(get(&proxy, "/cart").await.text(), fragment);
}

#[tokio::test]
async fn an_existing_widget_gets_identity_instead_of_a_second_one() {
    let page = "<!doctype html><html><body><invent-assistant assistant-id=\"ast_own\"></invent-assistant>\
                <script src=\"https://www.useinvent.com/button.js\" async></script></body></html>";
    let upstream = spawn_html_upstream(page).await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let signed_in = get_as(&proxy, "/", &tokens::hs256(&tokens::claims("user_42"))).await;
    let text = signed_in.text();
    assert_eq!(signed_in.widgets(), 1, "{text}");
    assert_eq!(text.matches("button.js").count(), 1, "{text}");
    assert_eq!(widget_attribute(&text, "assistant-id").as_deref(), Some("ast_own"));
    assert_eq!(widget_attribute(&text, "user-id").as_deref(), Some("user_42"));
    assert_eq!(
        widget_attribute(&text, "user-hash").as_deref(),
        Some("45bb144b8ebbe9876600b63739423f010f4ea3d43771ea3fee1329d463683b59")
    );
}

#[tokio::test]
async fn a_page_that_loads_the_script_gets_only_the_element() {
    let page = "<!doctype html><html><head><script src=\"https://www.useinvent.com/button.js\"></script></head>\
                <body>x</body></html>";
    let upstream = spawn_html_upstream(page).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "")).await;
    let text = get(&proxy, "/").await.text();
    assert_eq!(text.matches("button.js").count(), 1, "{text}");
    assert!(text.contains("x<invent-assistant assistant-id=\"ast_test\"></invent-assistant></body>"), "{text}");
}

#[tokio::test]
async fn with_head_end_a_later_widget_in_the_page_is_not_a_second_one() {
    let page = "<!doctype html><html><head></head><body><invent-assistant assistant-id=\"ast_own\"></invent-assistant>\
                <script src=\"https://www.useinvent.com/button.js\"></script></body></html>";
    let upstream = spawn_html_upstream(page).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "inject:\n  position: head_end\n")).await;
    let received = get(&proxy, "/").await;
    let text = received.text();
    assert_eq!(received.widgets(), 1, "{text}");
    assert_eq!(text.matches("button.js").count(), 1, "{text}");
}

#[tokio::test]
async fn only_top_level_get_navigations_to_included_paths_are_rewritten() {
    let upstream = spawn_html_upstream(PAGE).await;
    let rules = "inject:\n  include_paths: [\"/**\"]\n  exclude_paths: [\"/admin/**\", \"/*.partial\"]\n";
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, rules)).await;
    assert_eq!(get(&proxy, "/shop/item").await.widgets(), 1);
    for path in ["/admin/users", "/admin/", "/cart.partial"] {
        assert_eq!(get(&proxy, path).await.text(), PAGE, "{path} is excluded");
    }
    for (name, value) in [("sec-fetch-dest", "iframe"), ("x-requested-with", "XMLHttpRequest"), ("hx-request", "true")]
    {
        assert_eq!(get_with(&proxy, "/", &[(name, value)]).await.text(), PAGE, "{name}: {value}");
    }
    assert_eq!(get_with(&proxy, "/", &[("sec-fetch-dest", "document")]).await.widgets(), 1);
    let post = Request::post("/").body(Full::new(Bytes::from_static(b"a=1"))).unwrap();
    assert_eq!(send(&proxy, post).await.text(), PAGE);
    let head = send(&proxy, Request::head("/").body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(head.headers[header::CONTENT_LENGTH], PAGE.len().to_string().as_str());
}

#[tokio::test]
async fn include_paths_limit_injection_to_matching_paths() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "inject:\n  include_paths: [\"/shop/*\"]\n")).await;
    assert_eq!(get(&proxy, "/shop/shoes").await.widgets(), 1);
    assert_eq!(get(&proxy, "/shop/shoes/red").await.widgets(), 0);
    assert_eq!(get(&proxy, "/").await.widgets(), 0);
}

#[tokio::test]
async fn other_statuses_types_and_encodings_pass_through_byte_for_byte() {
    let gzipped = {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(PAGE.as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    let latin1 = b"<!DOCTYPE html><html><body>caf\xe9</body></html>".to_vec();
    let gz = gzipped.clone();
    let upstream = spawn_upstream(move |req| {
        let gz = gz.clone();
        let latin1 = latin1.clone();
        async move {
            match req.uri().path() {
                "/missing" => respond(StatusCode::NOT_FOUND, "text/html", PAGE),
                "/data" => respond(StatusCode::OK, "application/json", "{\"html\":\"<body></body>\"}"),
                "/gzip" => {
                    let mut response = respond(StatusCode::OK, "text/html", gz);
                    response.headers_mut().insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                    response
                }
                _ => respond(StatusCode::OK, "text/html; charset=windows-1252", latin1),
            }
        }
    })
    .await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "")).await;
    let missing = get(&proxy, "/missing").await;
    assert_eq!((missing.status, missing.text().as_str()), (StatusCode::NOT_FOUND, PAGE));
    assert_eq!(get(&proxy, "/data").await.text(), "{\"html\":\"<body></body>\"}");
    let gzip = get_with(&proxy, "/gzip", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzip.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(gzip.body, Bytes::from(gzipped), "compressed pages are not corrupted");
    let latin = get(&proxy, "/latin1").await;
    assert_eq!(&latin.body[..], b"<!DOCTYPE html><html><body>caf\xe9</body></html>");
}

#[tokio::test]
async fn rewritten_pages_lose_their_length_and_strong_etag() {
    let upstream = spawn_upstream(|_| async {
        let mut response = html(PAGE);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, PAGE.len().into());
        headers.insert(header::ETAG, "\"v7\"".parse().unwrap());
        headers.insert("content-md5", "Q2hlY2sgSW50ZWdyaXR5IQ==".parse().unwrap());
        headers.insert(header::CACHE_CONTROL, "public, max-age=60".parse().unwrap());
        response
    })
    .await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "")).await;
    let page = get(&proxy, "/").await;
    assert_eq!(page.widgets(), 1);
    assert_eq!(page.headers[header::ETAG], "W/\"v7\"");
    assert!(!page.headers.contains_key("content-md5"));
    let length = page.headers.get(header::CONTENT_LENGTH);
    assert!(length.is_none_or(|l| l.to_str().unwrap() == page.body.len().to_string()));
    assert_eq!(page.headers[header::CACHE_CONTROL], "public, max-age=60", "anonymous and no identity: cacheable");
}

#[tokio::test]
async fn personalised_pages_are_private_and_vary_by_cookie() {
    let upstream = spawn_upstream(|_| async {
        let mut response = html(PAGE);
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, "public, max-age=60, s-maxage=300".parse().unwrap());
        headers.insert(header::VARY, "Accept-Encoding".parse().unwrap());
        response
    })
    .await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let signed_in = get_as(&proxy, "/", &tokens::hs256(&tokens::claims("user_42"))).await;
    assert_eq!(signed_in.headers[header::CACHE_CONTROL], "private, max-age=60");
    let vary: Vec<_> = signed_in.headers.get_all(header::VARY).iter().collect();
    assert_eq!(vary, ["Accept-Encoding", "Cookie"]);
    let anonymous = get(&proxy, "/").await;
    assert_eq!(anonymous.headers[header::CACHE_CONTROL], "public, max-age=60, s-maxage=300");
    assert!(anonymous.headers.get_all(header::VARY).iter().any(|v| v == "Cookie"), "the page depends on the cookie");
}

#[tokio::test]
async fn a_not_modified_answer_keeps_the_validators_of_the_rewritten_page() {
    let upstream = spawn_upstream(|req| async move {
        let status =
            if req.headers().contains_key(header::IF_NONE_MATCH) { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
        let mut response = respond(status, "text/html", if status == StatusCode::OK { PAGE } else { "" });
        response.headers_mut().insert(header::ETAG, "\"v7\"".parse().unwrap());
        response
    })
    .await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let page = get(&proxy, "/").await;
    assert_eq!(page.headers[header::ETAG], "W/\"v7\"");
    let revalidated = get_with(&proxy, "/", &[("if-none-match", "W/\"v7\"")]).await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers[header::ETAG], "W/\"v7\"", "the cached rewritten page keeps a weak validator");
    assert!(revalidated.headers.get_all(header::VARY).iter().any(|v| v == "Cookie"));
}

#[tokio::test]
async fn xhtml_pages_get_well_formed_markup() {
    let xhtml = "<?xml version=\"1.0\"?><!DOCTYPE html><html xmlns=\"http://www.w3.org/1999/xhtml\"><body><p>x</p></body></html>";
    let upstream =
        spawn_upstream(move |_| async move { respond(StatusCode::OK, "application/xhtml+xml", xhtml) }).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "")).await;
    let page = get(&proxy, "/").await.text();
    assert!(
        page.contains("<script type=\"text/javascript\" src=\"https://www.useinvent.com/button.js\" async=\"async\" defer=\"defer\"></script></body>"),
        "{page}"
    );
}

#[tokio::test]
async fn no_transform_and_downloads_pass_through() {
    let upstream = spawn_upstream(|req| async move {
        let mut response = html(PAGE);
        let (name, value) = match req.uri().path() {
            "/no-transform" => (header::CACHE_CONTROL, "max-age=60, no-transform"),
            _ => (header::CONTENT_DISPOSITION, "attachment; filename=\"export.html\""),
        };
        response.headers_mut().insert(name, value.parse().unwrap());
        response
    })
    .await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let token = tokens::hs256(&tokens::claims("user_42"));
    assert_eq!(get_as(&proxy, "/no-transform", &token).await.text(), PAGE);
    assert_eq!(get_as(&proxy, "/export", &token).await.text(), PAGE, "an exported file never carries the user's hash");
}

#[tokio::test]
async fn personalised_pages_lose_cdn_cache_directives() {
    let upstream = spawn_upstream(|_| async {
        let mut response = html(PAGE);
        response.headers_mut().insert("cdn-cache-control", "max-age=600".parse().unwrap());
        response.headers_mut().insert("surrogate-control", "max-age=600".parse().unwrap());
        response
    })
    .await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let signed_in = get_as(&proxy, "/", &tokens::hs256(&tokens::claims("user_42"))).await;
    assert!(
        !signed_in.headers.contains_key("cdn-cache-control") && !signed_in.headers.contains_key("surrogate-control")
    );
    let anonymous = get(&proxy, "/").await;
    assert_eq!(anonymous.headers["cdn-cache-control"], "max-age=600", "untouched when nothing personal was added");
}

#[tokio::test]
async fn a_scheme_relative_script_tag_counts_as_the_widget_script() {
    let page = "<!doctype html><html><head><script src=\"//www.useinvent.com/button.js\" async></script></head><body>x</body></html>";
    let upstream = spawn_html_upstream(page).await;
    let proxy = spawn_proxy(&proxy_yaml(upstream.addr, "")).await;
    let text = get(&proxy, "/").await.text();
    assert_eq!(text.matches("button.js").count(), 1, "{text}");
}
