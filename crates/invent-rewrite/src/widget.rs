//! The widget's markup, built from plain values: the `<invent-assistant>` element with
//! the assistant's attributes and the visitor's identity, and the script tag that loads
//! it (with the page's CSP nonce), every attribute value escaped.

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

/// The widget's markup, with the parts that never change rendered once at start-up.
#[derive(Debug, Clone)]
pub struct Widget {
    /// `<invent-assistant assistant-id=".." theme-..=".."` without its closing `>`.
    element_open: String,
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
    pub fn new(assistant_id: &str, script_url: &str, attributes: &[(&str, &str)]) -> Self {
        let mut element_open = String::from("<invent-assistant");
        push_attribute(&mut element_open, "assistant-id", assistant_id);
        for (name, value) in attributes {
            push_attribute(&mut element_open, name, value);
        }
        let mut script_open = String::from("<script type=\"text/javascript\"");
        push_attribute(&mut script_open, "src", script_url);
        Widget {
            element_open,
            script_tag: format!("{script_open} async defer></script>"),
            xhtml_script_tag: format!("{script_open} async=\"async\" defer=\"defer\"></script>"),
            script_url_without_scheme: without_scheme(script_url).to_owned(),
            assistant_id: assistant_id.to_owned(),
        }
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
        let mut out = String::with_capacity(self.element_open.len() + self.script_tag.len() + 256);
        if element {
            out.push_str(&self.element_open);
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
}
