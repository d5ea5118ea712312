//! What a tag's name tells the skimmer: the elements lol_html watches, void elements, and
//! the namespace changes of lol_html's tree builder simulation; and the open elements.

use std::ops::Range;

use super::lexer::{TAG_NAME_ENDS, TextType};

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

/// A tag name of up to 21 letters, digits and hyphens packed in six bits a byte, letters
/// lowercased; 0 for any other name. Names are classified and the open elements matched
/// by one comparison of keys, and a key gives its name back.
pub(super) type Key = u128;

const KEY_BITS: u32 = 6;
const KEY_MAX_LEN: usize = (Key::BITS / KEY_BITS) as usize;

const fn key_code(c: u8) -> Option<u8> {
    match c {
        b'a'..=b'z' => Some(c - b'a' + 1),
        b'A'..=b'Z' => Some(c - b'A' + 1),
        b'0'..=b'9' => Some(c - b'0' + 27),
        b'-' => Some(37),
        _ => None,
    }
}

/// The key of a whole tag name (0 if it has none): [`read_name`]'s, for constants too.
pub(super) const fn key(name: &[u8]) -> Key {
    if name.len() > KEY_MAX_LEN {
        return 0;
    }
    let mut key = 0;
    let mut i = 0;
    while i < name.len() {
        let code = NAME_BYTES[name[i] as usize];
        if code & (UNKEYED | NAME_END) != 0 {
            return 0;
        }
        key = (key << KEY_BITS) | code as Key;
        i += 1;
    }
    key
}

/// What a byte of a tag name adds to its key: its code, or `UNKEYED` (the name has no
/// key), or `NAME_END` (what ends a tag name: whitespace, `/` and `>`).
const NAME_BYTES: [u8; 256] = {
    let mut table = [UNKEYED; 256];
    let mut b = 0;
    while b < 256 {
        if TAG_NAME_ENDS[b] {
            table[b] = NAME_END;
        } else if let Some(code) = key_code(b as u8) {
            table[b] = code;
        }
        b += 1;
    }
    table
};
const UNKEYED: u8 = 0x40;
const NAME_END: u8 = 0x80;

/// The tag name at the start of `rest`: its length, up to whitespace, `/`, `>` or the
/// end of `rest`, and its key, read in one pass.
pub(super) fn read_name(rest: &[u8]) -> (usize, Key) {
    let mut key: Key = 0;
    let mut codes = 0;
    let mut len = 0;
    for &b in rest {
        let code = NAME_BYTES[usize::from(b)];
        if code == NAME_END {
            break;
        }
        key = (key << KEY_BITS) | Key::from(code);
        codes |= code;
        len += 1;
    }
    if codes & UNKEYED != 0 || len > KEY_MAX_LEN { (len, 0) } else { (len, key) }
}

/// The name a nonzero key was made from, lowercased, appended to `into`.
fn write_key(mut key: Key, into: &mut Vec<u8>) {
    let mut name = [0; KEY_MAX_LEN];
    let mut len = 0;
    while key != 0 {
        name[len] = match (key & 0x3F) as u8 {
            code @ 1..=26 => b'a' + code - 1,
            code @ 27..=36 => b'0' + code - 27,
            _ => b'-',
        };
        len += 1;
        key >>= KEY_BITS;
    }
    into.extend(name[..len].iter().rev());
}

/// The names of every kind but `Other`.
const KINDS: &[(&[u8], Kind)] = &[
    (b"html", Kind::Page),
    (b"head", Kind::Page),
    (b"body", Kind::Page),
    (b"meta", Kind::Meta),
    (b"svg", Kind::Svg),
    (b"math", Kind::Math),
    (b"script", Kind::Script),
    (b"plaintext", Kind::PlainText),
    (b"textarea", Kind::RawText),
    (b"title", Kind::RawText),
    (b"style", Kind::RawText),
    (b"iframe", Kind::RawText),
    (b"xmp", Kind::RawText),
    (b"noembed", Kind::RawText),
    (b"noframes", Kind::RawText),
    (b"noscript", Kind::RawText),
    (b"area", Kind::Void),
    (b"base", Kind::Void),
    (b"basefont", Kind::Void),
    (b"bgsound", Kind::Void),
    (b"br", Kind::Void),
    (b"col", Kind::Void),
    (b"embed", Kind::Void),
    (b"hr", Kind::Void),
    (b"img", Kind::Void),
    (b"input", Kind::Void),
    (b"keygen", Kind::Void),
    (b"link", Kind::Void),
    (b"param", Kind::Void),
    (b"source", Kind::Void),
    (b"track", Kind::Void),
    (b"wbr", Kind::Void),
    (b"invent-assistant", Kind::Widget),
];

/// `KINDS` by key, in a table with one slot per name: a key's slot is the only place its
/// kind can be.
struct KindTable {
    keys: [Key; KindTable::SLOTS],
    kinds: [Kind; KindTable::SLOTS],
}

impl KindTable {
    const BITS: u32 = 7;
    const SLOTS: usize = 1 << Self::BITS;
    /// A multiplier that gives each name of `KINDS` a slot of its own (found by search;
    /// `build` fails the build should a name be added that shares one).
    const MULTIPLIER: u64 = 0x2e05_319a_cb5c_7427;

    const fn slot(key: Key) -> usize {
        let folded = (key as u64) ^ ((key >> 64) as u64);
        (folded.wrapping_mul(Self::MULTIPLIER) >> (u64::BITS - Self::BITS)) as usize
    }

    const fn build() -> KindTable {
        let mut table = KindTable { keys: [0; Self::SLOTS], kinds: [Kind::Other; Self::SLOTS] };
        let mut i = 0;
        while i < KINDS.len() {
            let key = key(KINDS[i].0);
            let slot = Self::slot(key);
            assert!(key != 0 && table.keys[slot] == 0, "two kinds of names share a slot");
            table.keys[slot] = key;
            table.kinds[slot] = KINDS[i].1;
            i += 1;
        }
        table
    }
}

static KIND_TABLE: KindTable = KindTable::build();

impl Kind {
    /// The kind of the tag whose name has this key.
    pub(super) fn of(name: Key) -> Kind {
        let slot = KindTable::slot(name);
        if name != 0 && KIND_TABLE.keys[slot] == name { KIND_TABLE.kinds[slot] } else { Kind::Other }
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

/// The keys of some names, sorted: a name is looked up among them by binary search.
struct KeySet<const N: usize>([Key; N]);

impl<const N: usize> KeySet<N> {
    const fn of(names: [&[u8]; N]) -> Self {
        let mut keys = [0; N];
        let mut i = 0;
        while i < N {
            keys[i] = key(names[i]);
            assert!(keys[i] != 0, "a name in a key set needs a key");
            let mut j = i;
            while j > 0 && keys[j - 1] > keys[j] {
                let k = keys[j];
                keys[j] = keys[j - 1];
                keys[j - 1] = k;
                j -= 1;
            }
            i += 1;
        }
        KeySet(keys)
    }

    fn has(&self, name: Key) -> bool {
        name != 0 && self.0.binary_search(&name).is_ok()
    }
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

const HTML_INTEGRATION_POINTS_IN_SVG: KeySet<3> = KeySet::of([b"desc", b"title", b"foreignobject"]);
const TEXT_INTEGRATION_POINTS_IN_MATHML: KeySet<5> = KeySet::of([b"mi", b"mo", b"mn", b"ms", b"mtext"]);
const CLOSES_FOREIGN_CONTENT_IN_HTML: KeySet<2> = KeySet::of([b"p", b"br"]);
const CAUSES_FOREIGN_CONTENT_EXIT: KeySet<44> = KeySet::of([
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
]);

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

    /// A start tag inside an SVG subtree stays in it (is no HTML integration point, does
    /// not end foreign content, and is not `font`).
    pub(super) fn stays_in_svg(key: Key, name: &[u8]) -> bool {
        Self::start_tag_in(Namespace::Svg, key, name) == Foreign::Stay
    }

    /// An end tag inside foreign content (other than the subtree's own) leaves it.
    pub(super) fn end_tag_leaves_foreign(key: Key) -> bool {
        CLOSES_FOREIGN_CONTENT_IN_HTML.has(key)
    }

    /// A start tag other than `svg`/`math` inside foreign content; `key` is its name's.
    pub(super) fn foreign_start_tag(&self, key: Key, name: &[u8]) -> Foreign {
        Self::start_tag_in(self.current(), key, name)
    }

    fn start_tag_in(current: Namespace, key: Key, name: &[u8]) -> Foreign {
        const FONT: Key = self::key(b"font");
        if CAUSES_FOREIGN_CONTENT_EXIT.has(key) {
            Foreign::Leave
        } else if current == Namespace::Svg && HTML_INTEGRATION_POINTS_IN_SVG.has(key)
            || current == Namespace::MathMl && TEXT_INTEGRATION_POINTS_IN_MATHML.has(key)
        {
            Foreign::IntegrationPoint
        } else if key == FONT || current == Namespace::MathMl && !hashable(name) {
            Foreign::Unsure
        } else {
            Foreign::Stay
        }
    }

    /// An end tag (`key` is its name's); `false` when lol_html would decide from what the
    /// skimmer does not read.
    pub(super) fn end_tag(&mut self, key: Key, name: &[u8]) -> bool {
        const SVG: Key = self::key(b"svg");
        const MATH: Key = self::key(b"math");
        let current = self.current();
        if current == Namespace::Html {
            let Some(&previous) = self.stack.len().checked_sub(2).and_then(|i| self.stack.get(i)) else {
                return true;
            };
            if previous == Namespace::MathMl && TEXT_INTEGRATION_POINTS_IN_MATHML.has(key)
                || previous == Namespace::Svg && HTML_INTEGRATION_POINTS_IN_SVG.has(key)
            {
                self.leave();
            } else if previous == Namespace::MathMl && !hashable(name) {
                return false;
            }
        } else if current == Namespace::Svg && key == SVG
            || current == Namespace::MathMl && key == MATH
            || Self::end_tag_leaves_foreign(key)
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
    /// Each element's name key; 0 for a name without one, kept in `unkeyed`.
    keys: Vec<Key>,
    /// The names without a key: the element's place in `keys`, where its name starts in
    /// `unkeyed_names` (lowercased, one after another).
    unkeyed: Vec<(usize, usize)>,
    unkeyed_names: Vec<u8>,
}

impl OpenElements {
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Opens an element; `key` is its name's.
    pub(super) fn push(&mut self, key: Key, name: &[u8]) {
        if key == 0 {
            self.unkeyed.push((self.keys.len(), self.unkeyed_names.len()));
            self.unkeyed_names.extend(name.iter().map(u8::to_ascii_lowercase));
        }
        self.keys.push(key);
    }

    /// The start tags of the elements in `range` (what lol_html has not seen opened).
    pub(super) fn start_tags(&self, range: Range<usize>, into: &mut Vec<u8>) {
        let end = range.end.min(self.keys.len());
        let start = range.start.min(end);
        // The names without a key, in the order of their elements, from the first in range.
        let first = self.unkeyed.partition_point(|&(element, _)| element < start);
        let mut unkeyed = (first..self.unkeyed.len()).map(|at| self.unkeyed_name(at));
        for &key in &self.keys[start..end] {
            into.push(b'<');
            match key {
                0 => into.extend_from_slice(unkeyed.next().unwrap_or_default()),
                key => write_key(key, into),
            }
            into.push(b'>');
        }
    }

    /// The name of the `at`th open element without a key.
    fn unkeyed_name(&self, at: usize) -> &[u8] {
        let start = self.unkeyed.get(at).map_or(self.unkeyed_names.len(), |&(_, start)| start);
        let end = self.unkeyed.get(at + 1).map_or(self.unkeyed_names.len(), |&(_, start)| start);
        self.unkeyed_names.get(start..end).unwrap_or_default()
    }

    /// The nearest open element of this name (whose key is `key`).
    pub(super) fn find(&self, key: Key, name: &[u8]) -> Option<usize> {
        if key != 0 {
            return self.keys.iter().rposition(|&k| k == key);
        }
        let at = (0..self.unkeyed.len()).rev().find(|&at| self.unkeyed_name(at).eq_ignore_ascii_case(name))?;
        Some(self.unkeyed[at].0)
    }

    /// Closes element `i` and all opened after it.
    pub(super) fn pop_to(&mut self, i: usize) {
        self.keys.truncate(i);
        while let Some(&(element, start)) = self.unkeyed.last()
            && element >= i
        {
            self.unkeyed_names.truncate(start);
            self.unkeyed.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gives_its_name_back_lowercased() {
        for name in ["a", "H2", "invent-assistant", "foreignObject", "abcdefghijklmnopqrstu"] {
            let mut back = Vec::new();
            write_key(key(name.as_bytes()), &mut back);
            assert_eq!(back, name.to_ascii_lowercase().as_bytes());
        }
        for name in ["o:p", "my_el", "abcdefghijklmnopqrstuv", "é"] {
            assert_eq!(key(name.as_bytes()), 0, "{name}");
        }
    }

    #[test]
    fn a_name_read_whole_has_the_key_of_its_bytes() {
        for (text, name) in [
            ("div>", "div"),
            ("H2 class=x", "H2"),
            ("invent-assistant/", "invent-assistant"),
            ("o:p>", "o:p"),
            ("abcdefghijklmnopqrstuv\t", "abcdefghijklmnopqrstuv"),
            ("a\x0C", "a"),
            ("x\0y", "x\0y"),
            ("svg", "svg"),
        ] {
            assert_eq!(read_name(text.as_bytes()), (name.len(), key(name.as_bytes())), "{text:?}");
        }
    }

    #[test]
    fn every_named_kind_is_found_by_its_key_and_others_are_other() {
        for &(name, kind) in KINDS {
            assert_eq!(Kind::of(key(name)), kind, "{}", String::from_utf8_lossy(name));
            assert_eq!(Kind::of(key(&name.to_ascii_uppercase())), kind);
        }
        for name in ["div", "p", "a", "span", "h2", "path", "o:p", "scripts", "bod"] {
            assert_eq!(Kind::of(key(name.as_bytes())), Kind::Other, "{name}");
        }
    }

    #[test]
    fn a_key_set_finds_its_names_in_any_case() {
        for name in ["b", "BlockQuote", "h1", "var", "table"] {
            assert!(CAUSES_FOREIGN_CONTENT_EXIT.has(key(name.as_bytes())), "{name}");
        }
        for name in ["path", "h7", "bo", "o:p", ""] {
            assert!(!CAUSES_FOREIGN_CONTENT_EXIT.has(key(name.as_bytes())), "{name}");
        }
        assert!(HTML_INTEGRATION_POINTS_IN_SVG.has(key(b"foreignObject")));
    }

    #[test]
    fn names_with_and_without_keys_open_and_close_alike() {
        let mut open = OpenElements::default();
        for name in ["html", "o:p", "DIV", "x_y", "div", "O:P"] {
            open.push(key(name.as_bytes()), name.as_bytes());
        }
        let mut tags = Vec::new();
        open.start_tags(1..open.len(), &mut tags);
        assert_eq!(tags, b"<o:p><div><x_y><div><o:p>");
        tags.clear();
        open.start_tags(2..5, &mut tags);
        assert_eq!(tags, b"<div><x_y><div>");
        assert_eq!(open.find(key(b"Div"), b"Div"), Some(4));
        assert_eq!(open.find(0, b"o:p"), Some(5), "the nearest");
        assert_eq!(open.find(0, b"q:r"), None);
        open.pop_to(3);
        assert_eq!(open.find(0, b"x_y"), None);
        assert_eq!(open.find(0, b"o:p"), Some(1));
        open.pop_to(1);
        tags.clear();
        open.start_tags(0..open.len(), &mut tags);
        assert_eq!(tags, b"<html>");
    }
}
