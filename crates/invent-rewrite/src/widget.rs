//! The widget's markup, built from plain values: the `<invent-assistant>` element with
//! the assistant's attributes and the visitor's identity, and the script tag that loads
//! it (with the page's CSP nonce), every attribute value escaped; optionally marked to
//! survive Turbo Drive and Turbolinks visits ([`Widget::kept_across_visits`]).

use std::borrow::Cow;
use std::fmt::Write as _;

/// A signed-in visitor, as the widget shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub user_id: String,
    /// Lowercase hex HMAC-SHA256 of `user_id`, keyed with the assistant's secret key.
    pub user_hash: String,
    pub user_name: Option<String>,
    /// Only ever an absolute `https://` URL.
    pub user_avatar: Option<String>,
}

/// Where in the page the widget goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Before `</body>` (at the end of the document without one).
    BodyEnd,
    /// Before `</head>` (before `</body>` without one).
    HeadEnd,
}

/// How the browser parses the page, which decides how attributes may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Html,
    /// `application/xhtml+xml`: an XML parser, so every attribute needs a value.
    Xhtml,
}

/// The injected element's `id` for an anonymous visitor; a signed-in visitor's adds a
/// digest of the identity attributes ([`element_id`]).
pub const ELEMENT_ID: &str = "invent-assistant";

/// The widget's markup, with the parts that never change rendered once at start-up.
#[derive(Debug, Clone)]
pub struct Widget {
    /// ` assistant-id=".." theme-..=".."`: the element's fixed attributes.
    element_attributes: String,
    /// The element is a Turbo/Turbolinks permanent element and the script tag is not
    /// evaluated again by them ([`Widget::kept_across_visits`]).
    kept_across_visits: bool,
    /// `<script type=".." src=".."` without the rest of the tag.
    script_open: String,
    script_tag: String,
    /// The same tag with attribute values, for XHTML.
    xhtml_script_tag: String,
    /// The script URL without `http:`/`https:`, to recognise `//host/...` forms too.
    script_url_without_scheme: String,
    assistant_id: String,
}

impl Widget {
    /// The widget of assistant `assistant_id`, loading `script_url`, with `attributes`
    /// (its `theme-*` attributes, say) on the element after `assistant-id`, in order.
    /// Not kept across Turbo visits unless [`Widget::kept_across_visits`] says so.
    pub fn new(assistant_id: &str, script_url: &str, attributes: &[(&str, &str)]) -> Self {
        let mut element_attributes = String::new();
        push_attribute(&mut element_attributes, "assistant-id", assistant_id);
        for (name, value) in attributes {
            push_attribute(&mut element_attributes, name, value);
        }
        let mut script_open = String::from("<script type=\"text/javascript\"");
        push_attribute(&mut script_open, "src", script_url);
        let mut widget = Widget {
            element_attributes,
            kept_across_visits: false,
            script_open,
            script_tag: String::new(),
            xhtml_script_tag: String::new(),
            script_url_without_scheme: without_scheme(script_url).to_owned(),
            assistant_id: assistant_id.to_owned(),
        };
        widget.render_script_tags();
        widget
    }

    /// Keeps one widget, its script run once, across Turbo Drive and Turbolinks visits
    /// (which replace `<body>` with the next page's, fetched in the background):
    ///
    /// - the element gets an `id` ([`element_id`]) and `data-turbo-permanent` and
    ///   `data-turbolinks-permanent`: when the next page has an element with the same id
    ///   and the attribute, both libraries move the current element, as it is, into the new
    ///   body in its place, so the widget is not rebuilt. The id is the same on every page
    ///   as long as the visitor's identity is; when it changes (signing in or out through a
    ///   Turbo form, whose redirect is a Turbo visit too), the ids differ, the old element
    ///   goes with the old body and the new page's element, with the new identity, is
    ///   upgraded by the script already loaded;
    /// - the script tag gets `data-turbo-eval="false"` and `data-turbolinks-eval="false"`:
    ///   both libraries re-create and run every `<script>` of a new body unless it carries
    ///   these, which would load the script and define the custom element a second time.
    ///   The script runs once per full page load, as the browser runs it.
    ///
    /// pjax needs neither: it replaces one container's content, and the widget is not in it.
    pub fn kept_across_visits(mut self, on: bool) -> Self {
        self.kept_across_visits = on;
        self.render_script_tags();
        self
    }

    fn render_script_tags(&mut self) {
        let open = &self.script_open;
        let eval =
            if self.kept_across_visits { " data-turbo-eval=\"false\" data-turbolinks-eval=\"false\"" } else { "" };
        self.script_tag = format!("{open}{eval} async defer></script>");
        self.xhtml_script_tag = format!("{open}{eval} async=\"async\" defer=\"defer\"></script>");
    }

    /// The configured assistant id, for a page's own element that lacks one.
    pub fn assistant_id(&self) -> &str {
        &self.assistant_id
    }

    /// Whether a page's `<script src>` value loads the widget's script: `&amp;` decoded,
    /// and a scheme-relative `//host/...` counting as the same URL.
    pub fn is_widget_script(&self, src: &str) -> bool {
        let src = if src.contains("&amp;") { Cow::Owned(src.replace("&amp;", "&")) } else { Cow::Borrowed(src) };
        without_scheme(&src) == self.script_url_without_scheme
    }

    /// The markup to insert: the element (unless the page has one) and the script tag
    /// (unless the page loads it already).
    /// `nonce`: the CSP nonce the script must carry to run.
    pub fn markup(
        &self,
        visitor: Option<&Visitor>,
        syntax: Syntax,
        nonce: Option<&str>,
        element: bool,
        script: bool,
    ) -> String {
        let mut out = String::with_capacity(self.element_attributes.len() + self.script_tag.len() + 320);
        if element {
            out.push_str("<invent-assistant");
            if self.kept_across_visits {
                push_attribute(&mut out, "id", &element_id(visitor));
                // Valued, so the markup is well-formed XHTML as well.
                out.push_str(" data-turbo-permanent=\"\" data-turbolinks-permanent=\"\"");
            }
            out.push_str(&self.element_attributes);
            for (name, value) in identity_attributes(visitor) {
                push_attribute(&mut out, name, value);
            }
            out.push_str("></invent-assistant>");
        }
        if script {
            let tag = match syntax {
                Syntax::Html => &self.script_tag,
                Syntax::Xhtml => &self.xhtml_script_tag,
            };
            match nonce {
                None => out.push_str(tag),
                Some(nonce) => {
                    // `<script` + ` nonce="…"` + the rest of the tag.
                    out.push_str("<script");
                    push_attribute(&mut out, "nonce", nonce);
                    out.push_str(&tag["<script".len()..]);
                }
            }
        }
        out
    }
}

/// The injected element's `id`: [`ELEMENT_ID`] for an anonymous visitor, and for a
/// signed-in one `invent-assistant-` and 16 hex digits of an FNV-1a digest of the identity
/// attributes (their values are in the page anyway). Equal ids mean equal identity
/// attributes (but for a 64-bit collision: a digest to notice a change, not to keep a
/// secret), so a Turbo visit keeps the element exactly when the visitor is unchanged.
/// A valid CSS identifier as it is: Turbo looks it up with `#id[data-turbo-permanent]`.
pub fn element_id(visitor: Option<&Visitor>) -> String {
    if visitor.is_none() {
        return ELEMENT_ID.to_owned();
    }
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut digest = OFFSET;
    for (name, value) in identity_attributes(visitor) {
        // 0xff never occurs in UTF-8: it separates the names and values unambiguously.
        for byte in name.bytes().chain([0xff]).chain(value.bytes()).chain([0xff]) {
            digest = (digest ^ u64::from(byte)).wrapping_mul(PRIME);
        }
    }
    format!("{ELEMENT_ID}-{digest:016x}")
}

/// A URL without its `http:`/`https:` scheme (`//host/path` stays as it is).
fn without_scheme(url: &str) -> &str {
    let url = url.trim();
    url.strip_prefix("https:").or_else(|| url.strip_prefix("http:")).unwrap_or(url)
}

/// The identity attributes of a visitor, in the order the widget documents them.
pub(crate) fn identity_attributes(visitor: Option<&Visitor>) -> Vec<(&'static str, &str)> {
    let Some(v) = visitor else { return Vec::new() };
    let mut attributes = vec![("user-id", v.user_id.as_str()), ("user-hash", v.user_hash.as_str())];
    if let Some(name) = &v.user_name {
        attributes.push(("user-name", name));
    }
    if let Some(avatar) = &v.user_avatar {
        attributes.push(("user-avatar", avatar));
    }
    attributes
}

fn push_attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_attribute(out, value);
    out.push('"');
}

/// Escapes an attribute value for a double-quoted attribute. Non-ASCII characters become
/// numeric character references, so the markup is plain ASCII and reads the same in any
/// ASCII-compatible page encoding.
pub fn escape_attribute(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let _ = write!(out, "&#x{:x};", c as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_cannot_break_out() {
        let mut out = String::new();
        escape_attribute(&mut out, "\"><script>alert('x')</script>&");
        assert_eq!(out, "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;");
        let mut out = String::new();
        escape_attribute(&mut out, "Zoë 日本\n");
        assert_eq!(out, "Zo&#xeb; &#x65e5;&#x672c;&#xa;");
    }

    #[test]
    fn the_widget_script_is_recognised_however_the_page_writes_it() {
        let widget = Widget::new("a", "https://cdn.example/button.js?v=1&x=2", &[]);
        assert!(widget.is_widget_script("https://cdn.example/button.js?v=1&amp;x=2"));
        assert!(widget.is_widget_script("//cdn.example/button.js?v=1&x=2"));
        assert!(!widget.is_widget_script("https://cdn.example/other.js"));
    }

    #[test]
    fn the_markup_carries_the_assistant_the_visitor_and_the_nonce() {
        let widget = Widget::new("ast_1", "https://cdn.example/b.js", &[("theme-appearance", "dark")]);
        let visitor = Visitor {
            user_id: "42".into(),
            user_hash: "ab".into(),
            user_name: Some("Ada \"A\"".into()),
            user_avatar: None,
        };
        assert_eq!(
            widget.markup(Some(&visitor), Syntax::Xhtml, Some("n0nce"), true, true),
            "<invent-assistant assistant-id=\"ast_1\" theme-appearance=\"dark\" user-id=\"42\" user-hash=\"ab\" \
             user-name=\"Ada &quot;A&quot;\"></invent-assistant><script nonce=\"n0nce\" type=\"text/javascript\" \
             src=\"https://cdn.example/b.js\" async=\"async\" defer=\"defer\"></script>"
        );
        assert_eq!(widget.markup(None, Syntax::Html, None, false, false), "");
    }

    fn ada() -> Visitor {
        Visitor { user_id: "42".into(), user_hash: "ab".into(), user_name: Some("Ada".into()), user_avatar: None }
    }

    #[test]
    fn a_widget_kept_across_visits_is_permanent_and_its_script_is_not_run_again() {
        let widget = Widget::new("ast_1", "https://cdn.example/b.js", &[("theme-appearance", "dark")]);
        let widget = widget.kept_across_visits(true);
        assert_eq!(
            widget.markup(None, Syntax::Html, None, true, true),
            "<invent-assistant id=\"invent-assistant\" data-turbo-permanent=\"\" data-turbolinks-permanent=\"\" \
             assistant-id=\"ast_1\" theme-appearance=\"dark\"></invent-assistant><script type=\"text/javascript\" \
             src=\"https://cdn.example/b.js\" data-turbo-eval=\"false\" data-turbolinks-eval=\"false\" async defer>\
             </script>"
        );
        let id = element_id(Some(&ada()));
        assert_eq!(
            widget.markup(Some(&ada()), Syntax::Xhtml, Some("n0nce"), true, true),
            format!(
                "<invent-assistant id=\"{id}\" data-turbo-permanent=\"\" data-turbolinks-permanent=\"\" \
                 assistant-id=\"ast_1\" theme-appearance=\"dark\" user-id=\"42\" user-hash=\"ab\" user-name=\"Ada\">\
                 </invent-assistant><script nonce=\"n0nce\" type=\"text/javascript\" src=\"https://cdn.example/b.js\" \
                 data-turbo-eval=\"false\" data-turbolinks-eval=\"false\" async=\"async\" defer=\"defer\"></script>"
            )
        );
        // The page's own element or script: only what is missing is added, marked as well.
        let script_only = widget.markup(Some(&ada()), Syntax::Html, None, false, true);
        assert!(script_only.starts_with("<script") && script_only.contains("data-turbo-eval=\"false\""));
        let element_only = widget.markup(None, Syntax::Html, None, true, false);
        assert!(element_only.ends_with("</invent-assistant>") && element_only.contains("data-turbo-permanent"));
    }

    /// Every attribute of every tag in `markup` has a quoted value, as XML requires;
    /// otherwise the first attribute without one.
    fn bare_attribute(markup: &str) -> Option<String> {
        for tag in markup.split('<').filter(|t| !t.is_empty() && !t.starts_with('/')) {
            let tag = tag.split('>').next().unwrap_or_default();
            let mut rest = tag.split_once(' ').map_or("", |(_, attributes)| attributes);
            while !rest.is_empty() {
                let Some((name, value)) = rest.split_once("=\"").filter(|(name, _)| !name.contains(' ')) else {
                    return Some(rest.to_owned());
                };
                assert!(!name.is_empty(), "{tag}");
                let (_, after) = value.split_once('"').unwrap_or_else(|| panic!("unclosed value in {tag:?}"));
                rest = after.trim_start();
            }
        }
        None
    }

    #[test]
    fn xhtml_markup_gives_every_attribute_a_value() {
        for kept in [false, true] {
            let widget = Widget::new("ast_1", "/b.js", &[("theme-button-color", "#fff")]).kept_across_visits(kept);
            for visitor in [None, Some(ada())] {
                let markup = widget.markup(visitor.as_ref(), Syntax::Xhtml, Some("n"), true, true);
                assert_eq!(bare_attribute(&markup), None, "{markup}");
            }
        }
        let html =
            Widget::new("ast_1", "/b.js", &[]).kept_across_visits(true).markup(None, Syntax::Html, None, true, true);
        assert_eq!(bare_attribute(&html).as_deref(), Some("async defer"), "the check sees HTML's bare attributes");
    }

    #[test]
    fn a_widget_not_kept_across_visits_has_no_turbo_attributes() {
        let widget = Widget::new("ast_1", "/b.js", &[]).kept_across_visits(false);
        for syntax in [Syntax::Html, Syntax::Xhtml] {
            let markup = widget.markup(Some(&ada()), syntax, None, true, true);
            assert!(!markup.contains("turbo") && !markup.contains(" id="), "{markup}");
        }
        assert_eq!(
            widget.markup(None, Syntax::Html, None, true, true),
            Widget::new("ast_1", "/b.js", &[]).markup(None, Syntax::Html, None, true, true),
            "off is the default"
        );
    }

    #[test]
    fn the_id_changes_exactly_when_the_identity_does() {
        assert_eq!(element_id(None), "invent-assistant");
        let id = element_id(Some(&ada()));
        let digits = id.strip_prefix("invent-assistant-").unwrap_or_default();
        assert!(digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
        assert_eq!(element_id(Some(&ada())), id, "the same visitor, the same id");
        let changed = [
            Visitor { user_id: "43".into(), ..ada() },
            Visitor { user_hash: "ac".into(), ..ada() },
            Visitor { user_name: None, ..ada() },
            Visitor { user_name: Some("Ada L".into()), ..ada() },
            Visitor { user_avatar: Some("https://a.example/x.png".into()), ..ada() },
            // Where a value ends is part of the digest.
            Visitor { user_id: "4".into(), user_hash: "2ab".into(), ..ada() },
        ];
        for visitor in changed {
            assert_ne!(element_id(Some(&visitor)), id, "{visitor:?}");
        }
    }
}
