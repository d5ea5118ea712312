//! The widget kept across Turbo Drive and Turbolinks visits (`inject.turbo_permanent`): the
//! markup it adds, the visits' requests it injects, and none of it when it is off. The
//! browser side, with the real Turbo, is in `browser/turbo.rs`.

use http::StatusCode;

use crate::support::*;

const PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Shop</title></head><body><h1>Shop</h1></body></html>\n";

/// The widget of `ProxyYaml::new` without `inject.turbo_permanent`.
const PLAIN_WIDGET: &str = "<invent-assistant assistant-id=\"ast_test\"></invent-assistant><script \
                            type=\"text/javascript\" src=\"https://www.useinvent.com/button.js\" async defer></script>";

const TURBO_8: &[(&str, &str)] = &[
    ("sec-fetch-dest", "empty"),
    ("sec-fetch-mode", "cors"),
    ("accept", "text/html, application/xhtml+xml"),
    ("x-turbo-request-id", "4b0e7f52-6f0c-4b8e-9d8a-2f5c1c3e9a10"),
];
/// Turbo 7 marks its visits by their `Accept` alone; a form's adds Turbo Streams.
const TURBO_7: &[(&str, &str)] = &[("sec-fetch-dest", "empty"), ("accept", "text/html, application/xhtml+xml")];
const TURBO_7_FORM_REDIRECT: &[(&str, &str)] =
    &[("sec-fetch-dest", "empty"), ("accept", "text/vnd.turbo-stream.html, text/html, application/xhtml+xml")];
const TURBOLINKS: &[(&str, &str)] = &[
    ("sec-fetch-dest", "empty"),
    ("accept", "text/html, application/xhtml+xml"),
    ("turbolinks-referrer", "http://shop.example/"),
];
/// A Turbo Frame renders only its frame; an app's own `fetch` of a page is not a visit.
const TURBO_FRAME: &[(&str, &str)] = &[
    ("sec-fetch-dest", "empty"),
    ("accept", "text/html, application/xhtml+xml"),
    ("x-turbo-request-id", "9c1d"),
    ("turbo-frame", "cart"),
];
const PLAIN_FETCH: &[(&str, &str)] = &[("sec-fetch-dest", "empty"), ("accept", "*/*")];

#[tokio::test]
async fn the_injected_element_is_permanent_and_its_script_not_evaluated_again() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    let page = get(&proxy, "/").await.text();
    assert_eq!(page, PAGE.replace("</body>", &format!("{WIDGET}</body>")));
    for attribute in ["id=\"invent-assistant\"", "data-turbo-permanent=\"\"", "data-turbolinks-permanent=\"\""] {
        assert!(WIDGET_ELEMENT.contains(attribute), "{attribute}");
    }
    for attribute in ["data-turbo-eval=\"false\"", "data-turbolinks-eval=\"false\""] {
        assert!(WIDGET_SCRIPT.contains(attribute), "{attribute}");
    }
}

#[tokio::test]
async fn turbo_and_turbolinks_visits_get_the_widget_frames_and_other_fetches_do_not() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    for (visit, headers) in [
        ("Turbo 8", TURBO_8),
        ("Turbo 7", TURBO_7),
        ("Turbo 7 form", TURBO_7_FORM_REDIRECT),
        ("Turbolinks", TURBOLINKS),
    ] {
        let page = get_with(&proxy, "/", headers).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.text(), PAGE.replace("</body>", &format!("{WIDGET}</body>")), "{visit}");
    }
    for (request, headers) in [("a Turbo Frame", TURBO_FRAME), ("a plain fetch", PLAIN_FETCH)] {
        assert_eq!(get_with(&proxy, "/", headers).await.text(), PAGE, "{request}");
    }
    // The other rules hold for visits as for navigations.
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).exclude_paths(&["/admin/**"])).await;
    assert_eq!(get_with(&proxy, "/admin/users", TURBO_8).await.text(), PAGE);
    assert_eq!(get_with(&proxy, "/shop", TURBO_8).await.widgets(), 1);
}

/// A signed-in visitor's element has an id of its own, the same on every page while the
/// identity is: a Turbo visit keeps the first page's element, and a sign-in or sign-out
/// (whose redirect is a Turbo visit too) replaces it.
#[tokio::test]
async fn the_id_is_the_same_while_the_identity_is() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let id = |page: &Received| widget_attribute(&page.text(), "id").unwrap_or_default();
    let ada = tokens::hs256(&tokens::claims("user_42"));
    let first = get_as(&proxy, "/", &ada).await;
    assert_eq!(widget_attribute(&first.text(), "user-id").as_deref(), Some("user_42"));
    let ada_id = id(&first);
    assert!(ada_id.starts_with("invent-assistant-") && ada_id.len() == "invent-assistant-".len() + 16, "{ada_id}");
    let cookie = format!("session={ada}");
    let visit = get_with(&proxy, "/next", &[TURBO_8, &[("cookie", cookie.as_str())]].concat()).await;
    assert_eq!(widget_attribute(&visit.text(), "user-id").as_deref(), Some("user_42"), "a visit is identified too");
    assert_eq!(id(&visit), ada_id, "a visit of the same visitor: the same id");
    // A new token for the same visitor (a later expiry) changes nothing the widget shows.
    let later = jsonwebtoken::get_current_timestamp() + 7200;
    let renewed = tokens::hs256(&tokens::with(tokens::claims("user_42"), "exp", later));
    assert_eq!(id(&get_as(&proxy, "/", &renewed).await), ada_id);
    let other = get_as(&proxy, "/", &tokens::hs256(&tokens::claims("user_43"))).await;
    assert_ne!(id(&other), ada_id, "another visitor");
    let renamed = get_as(&proxy, "/", &tokens::hs256(&tokens::with(tokens::claims("user_42"), "name", "Ada"))).await;
    assert_ne!(id(&renamed), ada_id, "a new name");
    assert_eq!(id(&get_with(&proxy, "/", TURBO_8).await), "invent-assistant", "signed out");
}

#[tokio::test]
async fn turbo_permanent_off_leaves_the_markup_and_the_visits_as_they_were() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).turbo_permanent(false)).await;
    let page = get(&proxy, "/").await.text();
    assert_eq!(page, PAGE.replace("</body>", &format!("{PLAIN_WIDGET}</body>")));
    assert!(!page.contains("data-turbo") && !page.contains("invent-assistant\""), "{page}");
    for headers in [TURBO_8, TURBO_7, TURBOLINKS] {
        assert_eq!(get_with(&proxy, "/", headers).await.text(), PAGE, "{headers:?}");
    }
}

/// XHTML is read by an XML parser: every attribute has a value, the Turbo ones included.
#[tokio::test]
async fn an_xhtml_page_gets_the_attributes_with_values() {
    const XHTML: &str = "<?xml version=\"1.0\"?>\n<!DOCTYPE html><html xmlns=\"http://www.w3.org/1999/xhtml\">\
                         <head><title>x</title></head><body><p>x</p></body></html>";
    let upstream = spawn_upstream(|_| async { respond(StatusCode::OK, "application/xhtml+xml", XHTML) }).await;
    let on = spawn_default_proxy(upstream.addr).await;
    let widget = "<invent-assistant id=\"invent-assistant\" data-turbo-permanent=\"\" data-turbolinks-permanent=\"\" \
                  assistant-id=\"ast_test\"></invent-assistant><script type=\"text/javascript\" \
                  src=\"https://www.useinvent.com/button.js\" data-turbo-eval=\"false\" data-turbolinks-eval=\"false\" \
                  async=\"async\" defer=\"defer\"></script>";
    assert_eq!(get(&on, "/").await.text(), XHTML.replace("</body>", &format!("{widget}</body>")));
    let off = spawn_proxy(ProxyYaml::new(upstream.addr).turbo_permanent(false)).await;
    let page = get(&off, "/").await.text();
    assert!(page.contains("async=\"async\"") && !page.contains("data-turbo"), "{page}");
}

/// The page's own element is the page's: it gets the visitor's identity, but no `id` or
/// `data-turbo-permanent` (the page decides whether it is kept); the script the proxy adds
/// is still not evaluated again by a visit.
#[tokio::test]
async fn a_pages_own_element_gets_identity_but_no_turbo_attributes() {
    const OWN: &str = "<!doctype html><html><body><invent-assistant assistant-id=\"ast_own\"></invent-assistant>\
                       </body></html>";
    let upstream = spawn_html_upstream(OWN).await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let cookie = format!("session={}", tokens::hs256(&tokens::claims("user_42")));
    let page = get_with(&proxy, "/", &[TURBO_8, &[("cookie", cookie.as_str())]].concat()).await.text();
    assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("user_42"), "{page}");
    assert_eq!(widget_attribute(&page, "assistant-id").as_deref(), Some("ast_own"), "{page}");
    assert!(!page.contains("data-turbo-permanent") && widget_attribute(&page, "id").is_none(), "{page}");
    assert!(page.ends_with(&format!("</invent-assistant>{WIDGET_SCRIPT}</body></html>")), "{page}");
}

/// A visit's page goes through the browser's HTTP cache like any `fetch`: signed in, it is
/// as private as a navigation's.
#[tokio::test]
async fn a_signed_in_visit_is_not_for_shared_caches() {
    let upstream = spawn_upstream(|_| async {
        let mut response = html(PAGE);
        response.headers_mut().insert(http::header::CACHE_CONTROL, "public, max-age=60".parse().unwrap());
        response
    })
    .await;
    let proxy = spawn_identity_proxy(&upstream).await;
    let cookie = format!("session={}", tokens::hs256(&tokens::claims("user_42")));
    let visit = get_with(&proxy, "/", &[TURBO_8, &[("cookie", cookie.as_str())]].concat()).await;
    assert_eq!(widget_attribute(&visit.text(), "user-id").as_deref(), Some("user_42"));
    assert_eq!(visit.headers[http::header::CACHE_CONTROL], "private, max-age=60");
    assert!(visit.headers.get_all(http::header::VARY).iter().any(|v| v == "Cookie"), "{:?}", visit.headers);
}

/// With `head_end` a visit's page gets the widget where a navigation's does: an HTML parser
/// moves it into the body, where Turbo finds permanent elements.
#[tokio::test]
async fn head_end_visits_get_the_same_markup() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).inject_position("head_end")).await;
    let expected = PAGE.replace("</head>", &format!("{WIDGET}</head>"));
    assert_eq!(get(&proxy, "/").await.text(), expected);
    assert_eq!(get_with(&proxy, "/", TURBO_8).await.text(), expected);
}
