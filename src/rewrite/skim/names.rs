//! What a tag's name tells the skimmer: the elements lol_html watches, void elements, and
//! the namespace changes of lol_html's tree builder simulation; and the open elements.

use super::lexer::TextType;

/// A tag name's part in the skimmer's decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `html`, `head`, `body`: the page's frame, where the widget goes.
    Page,
    /// `meta`: may carry a charset or a Content-Security-Policy.
    Meta,
    /// `invent-assistant`: the page's own widget.
    Widget,
    Svg,
    Math,
    /// Elements whose text lol_html reads as raw text (`script` apart).
    RawText,
    Script,
    PlainText,
    Void,
    Other,
}

/// A name of up to ten letters packed in six bits a letter, ignoring case; 0 for any
/// other name. Tag names are matched against constants of it in one comparison.
const fn key(name: &[u8]) -> u64 {
    if name.len() > 10 {
        return 0;
    }
    let mut key = 0;
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        if !c.is_ascii_alphabetic() {
            return 0;
        }
        key = (key << 6) | (c.to_ascii_lowercase() - b'a' + 1) as u64;
        i += 1;
    }
    key
}

impl Kind {
    pub(super) fn of(name: &[u8]) -> Kind {
        const HTML: u64 = key(b"html");
        const HEAD: u64 = key(b"head");
        const BODY: u64 = key(b"body");
        const META: u64 = key(b"meta");
        const SVG: u64 = key(b"svg");
        const MATH: u64 = key(b"math");
        const SCRIPT: u64 = key(b"script");
        const PLAINTEXT: u64 = key(b"plaintext");
        const TEXTAREA: u64 = key(b"textarea");
        const TITLE: u64 = key(b"title");
        const STYLE: u64 = key(b"style");
        const IFRAME: u64 = key(b"iframe");
        const XMP: u64 = key(b"xmp");
        const NOEMBED: u64 = key(b"noembed");
        const NOFRAMES: u64 = key(b"noframes");
        const NOSCRIPT: u64 = key(b"noscript");
        const AREA: u64 = key(b"area");
        const BASE: u64 = key(b"base");
        const BASEFONT: u64 = key(b"basefont");
        const BGSOUND: u64 = key(b"bgsound");
        const BR: u64 = key(b"br");
        const COL: u64 = key(b"col");
        const EMBED: u64 = key(b"embed");
        const HR: u64 = key(b"hr");
        const IMG: u64 = key(b"img");
        const INPUT: u64 = key(b"input");
        const KEYGEN: u64 = key(b"keygen");
        const LINK: u64 = key(b"link");
        const PARAM: u64 = key(b"param");
        const SOURCE: u64 = key(b"source");
        const TRACK: u64 = key(b"track");
        const WBR: u64 = key(b"wbr");
        match key(name) {
            HTML | HEAD | BODY => Kind::Page,
            META => Kind::Meta,
            SVG => Kind::Svg,
            MATH => Kind::Math,
            SCRIPT => Kind::Script,
            PLAINTEXT => Kind::PlainText,
            TEXTAREA | TITLE | STYLE | IFRAME | XMP | NOEMBED | NOFRAMES | NOSCRIPT => Kind::RawText,
            AREA | BASE | BASEFONT | BGSOUND | BR | COL | EMBED | HR | IMG | INPUT | KEYGEN | LINK | PARAM | SOURCE
            | TRACK | WBR => Kind::Void,
            0 if name.eq_ignore_ascii_case(b"invent-assistant") => Kind::Widget,
            _ => Kind::Other,
        }
    }

    /// lol_html does not keep it open (in the HTML namespace).
    pub(super) fn is_void(self) -> bool {
        matches!(self, Kind::Void | Kind::Meta)
    }

    /// How lol_html reads the text after this start tag, in the HTML namespace.
    pub(super) fn text_type(self) -> TextType {
        match self {
            Kind::Script => TextType::Script,
            Kind::RawText => TextType::Raw,
            Kind::PlainText => TextType::PlainText,
            _ => TextType::Data,
        }
    }
}

fn is_one_of(name: &[u8], names: &[&[u8]]) -> bool {
    names.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Whether lol_html names the tag by a hash (short names of letters and digits 1–6)
/// rather than by its bytes; some of its checks only see hashed names.
fn hashable(name: &[u8]) -> bool {
    let mut hash: u64 = 0;
    for &ch in name {
        if hash >> 59 != 0 {
            return false;
        }
        hash = match ch {
            b'a'..=b'z' | b'A'..=b'Z' => (hash << 5) | ((u64::from(ch) & 0x1F) + 5),
            b'1'..=b'6' => (hash << 5) | ((u64::from(ch) & 0x0F) - 1),
            _ => return false,
        };
    }
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    Html,
    Svg,
    MathMl,
}

/// What a start tag in foreign content does to the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Foreign {
    Stay,
    Leave,
    /// Back to HTML unless the tag is self-closing.
    IntegrationPoint,
    /// A case lol_html decides from attributes: the skimmer leaves the page to it.
    Unsure,
}

/// lol_html's tree builder simulation of namespaces (its `tree_builder_simulator`).
#[derive(Debug)]
pub(super) struct Namespaces {
    stack: Vec<Namespace>,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces { stack: vec![Namespace::Html] }
    }
}

const HTML_INTEGRATION_POINTS_IN_SVG: &[&[u8]] = &[b"desc", b"title", b"foreignobject"];
const TEXT_INTEGRATION_POINTS_IN_MATHML: &[&[u8]] = &[b"mi", b"mo", b"mn", b"ms", b"mtext"];
const CAUSES_FOREIGN_CONTENT_EXIT: &[&[u8]] = &[
    b"b",
    b"big",
    b"blockquote",
    b"body",
    b"br",
    b"center",
    b"code",
    b"dd",
    b"div",
    b"dl",
    b"dt",
    b"em",
    b"embed",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"head",
    b"hr",
    b"i",
    b"img",
    b"li",
    b"listing",
    b"menu",
    b"meta",
    b"nobr",
    b"ol",
    b"p",
    b"pre",
    b"ruby",
    b"s",
    b"small",
    b"span",
    b"strong",
    b"strike",
    b"sub",
    b"sup",
    b"table",
    b"tt",
    b"u",
    b"ul",
    b"var",
];

impl Namespaces {
    fn current(&self) -> Namespace {
        self.stack.last().copied().unwrap_or(Namespace::Html)
    }

    pub(super) fn in_html(&self) -> bool {
        self.current() == Namespace::Html
    }

    /// Not inside any SVG or MathML.
    pub(super) fn in_html_document(&self) -> bool {
        self.stack.len() == 1
    }

    pub(super) fn enter_foreign(&mut self, kind: Kind) {
        self.stack.push(if kind == Kind::Svg { Namespace::Svg } else { Namespace::MathMl });
    }

    pub(super) fn enter_html(&mut self) {
        self.stack.push(Namespace::Html);
    }

    pub(super) fn leave(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    /// A start tag other than `svg`/`math` inside foreign content.
    pub(super) fn foreign_start_tag(&self, name: &[u8]) -> Foreign {
        let current = self.current();
        if is_one_of(name, CAUSES_FOREIGN_CONTENT_EXIT) {
            Foreign::Leave
        } else if current == Namespace::Svg && is_one_of(name, HTML_INTEGRATION_POINTS_IN_SVG)
            || current == Namespace::MathMl && is_one_of(name, TEXT_INTEGRATION_POINTS_IN_MATHML)
        {
            Foreign::IntegrationPoint
        } else if name.eq_ignore_ascii_case(b"font") || current == Namespace::MathMl && !hashable(name) {
            Foreign::Unsure
        } else {
            Foreign::Stay
        }
    }

    /// An end tag; `false` when lol_html would decide from what the skimmer does not read.
    pub(super) fn end_tag(&mut self, name: &[u8]) -> bool {
        let current = self.current();
        if current == Namespace::Html {
            let Some(&previous) = self.stack.len().checked_sub(2).and_then(|i| self.stack.get(i)) else {
                return true;
            };
            if previous == Namespace::MathMl && is_one_of(name, TEXT_INTEGRATION_POINTS_IN_MATHML)
                || previous == Namespace::Svg && is_one_of(name, HTML_INTEGRATION_POINTS_IN_SVG)
            {
                self.leave();
            } else if previous == Namespace::MathMl && !hashable(name) {
                return false;
            }
        } else if current == Namespace::Svg && name.eq_ignore_ascii_case(b"svg")
            || current == Namespace::MathMl && name.eq_ignore_ascii_case(b"math")
            || is_one_of(name, &[b"p", b"br"])
        {
            self.leave();
        }
        true
    }
}

/// The stack of open elements as lol_html keeps it: every start tag is pushed (but void
/// elements, and self-closing ones in foreign content); an end tag pops up to the nearest
/// element of its name, if any.
#[derive(Debug, Default)]
pub(super) struct OpenElements {
    /// The names, lowercased, one after another.
    names: Vec<u8>,
    starts: Vec<usize>,
}

impl OpenElements {
    pub(super) fn len(&self) -> usize {
        self.starts.len()
    }

    pub(super) fn name(&self, i: usize) -> &[u8] {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.names.len());
        let start = self.starts.get(i).copied().unwrap_or(end);
        self.names.get(start..end).unwrap_or_default()
    }

    pub(super) fn push(&mut self, name: &[u8]) {
        self.starts.push(self.names.len());
        self.names.extend(name.iter().map(u8::to_ascii_lowercase));
    }

    /// The start tags of the elements from `first` on (what lol_html has not seen opened).
    pub(super) fn start_tags_from(&self, first: usize, into: &mut Vec<u8>) {
        for i in first..self.len() {
            into.push(b'<');
            into.extend_from_slice(self.name(i));
            into.push(b'>');
        }
    }

    /// The nearest open element of this name.
    pub(super) fn find(&self, name: &[u8]) -> Option<usize> {
        (0..self.len()).rev().find(|&i| self.name(i).eq_ignore_ascii_case(name))
    }

    /// Closes element `i` and all opened after it.
    pub(super) fn pop_to(&mut self, i: usize) {
        if let Some(&start) = self.starts.get(i) {
            self.names.truncate(start);
            self.starts.truncate(i);
        }
    }
}
