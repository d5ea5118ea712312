//! Ordinary tags, read in one tight loop: most of a page's markup is tags that only open
//! or close an element lol_html does not watch, and each of them needs no more than its
//! name and its end found, and the open elements updated.
//!
//! While the page is passed in the HTML document, the loop takes tag after tag that is
//! whole in the chunk, is a start tag of an element that is neither watched nor switches
//! the tokenizer (not `Kind::Page`, `Meta`, `Script`, raw text, SVG, MathML, the widget),
//! or an end tag that closes no element lol_html has seen. An inline SVG icon is read
//! whole too, when it is whole in the chunk, holds only elements that stay in SVG (no
//! `<script>`, no nested `<svg>`, no HTML integration point) and closes nothing opened
//! before it: it leaves the open elements as they were. At anything else — a comment, a
//! tag cut by the chunk's end — it stops at the construct's `<` and leaves it to the
//! lexer, which reads everything. A tag's attributes are read by the lexer's own reader
//! ([`super::attributes`]); the differential test holds both paths to lol_html.

use std::ops::Range;

use super::attributes::{self, Attr, NoNames, Read, TagEnd};
use super::lexer::find_near;
use super::names::{self, Key, Kind, Namespaces};
use super::{MAX_HELD, MAX_OPEN_ELEMENTS, Skimmer};

/// A start or end tag whole in the chunk, its attributes read.
struct WholeTag {
    end_tag: bool,
    /// Where its name is in the chunk, and the name's key.
    name: Range<usize>,
    key: Key,
    self_closing: bool,
    /// Just after its `>`.
    end: usize,
}

impl WholeTag {
    /// The tag at `chunk[start]` (a `<`), if it is one whole in the chunk.
    fn read(chunk: &[u8], start: usize) -> Option<WholeTag> {
        let end_tag = chunk.get(start + 1) == Some(&b'/');
        let from = start + 1 + usize::from(end_tag);
        if !chunk.get(from)?.is_ascii_alphabetic() {
            return None;
        }
        let (len, key) = names::read_name(&chunk[from..]);
        let (end, self_closing) = attributes_end(chunk, from + len)?;
        Some(WholeTag { end_tag, name: from..from + len, key, self_closing, end })
    }
}

impl Skimmer {
    /// Reads ordinary tags and the text between them from `at`; stops at the `<` of
    /// anything else, or at the chunk's end. The lexer is in the data state before and
    /// after, and the bytes read go the way the page goes now: passed.
    pub(super) fn pass_ordinary_tags(&mut self, chunk: &[u8], at: &mut usize) {
        while let Some(lt) = find_near(b'<', &chunk[*at..]) {
            let start = *at + lt;
            match WholeTag::read(chunk, start).and_then(|tag| self.pass_ordinary_tag(chunk, &tag)) {
                Some(end) => *at = end,
                None => {
                    *at = start;
                    return;
                }
            }
        }
        *at = chunk.len();
    }

    /// Takes the tag if it is an ordinary one, with what it does to the open elements:
    /// where the lexer goes on from (past the subtree, for an SVG icon). `None` leaves
    /// everything as it was.
    fn pass_ordinary_tag(&mut self, chunk: &[u8], tag: &WholeTag) -> Option<usize> {
        let name = &chunk[tag.name.clone()];
        if name.len() > MAX_HELD {
            return None;
        }
        let kind = Kind::of(tag.key);
        if tag.end_tag {
            // lol_html must see the page's frame close, and any element it has seen.
            if kind == Kind::Page {
                return None;
            }
            match self.open.find(tag.key, name) {
                Some(i) if i < self.synced => return None,
                Some(i) => self.open.pop_to(i),
                None => {}
            }
            return Some(tag.end);
        }
        match kind {
            Kind::Svg if !tag.self_closing => return self.svg_subtree(chunk, tag.end),
            _ if self.open.len() >= MAX_OPEN_ELEMENTS => return None,
            Kind::Other => self.open.push(tag.key, name),
            // Not kept open (in HTML, even when written `<x/>`).
            Kind::Void => {}
            _ => return None,
        }
        Some(tag.end)
    }

    /// The SVG subtree whose `<svg>` tag ends at `chunk[at]`, if it is an ordinary one and
    /// whole in the chunk: where it ends. The elements it opens are all closed again by
    /// its `</svg>`.
    fn svg_subtree(&self, chunk: &[u8], mut at: usize) -> Option<usize> {
        const SVG: Key = names::key(b"svg");
        let mut open = SubtreeStack::default();
        open.push(SVG)?;
        loop {
            let tag = WholeTag::read(chunk, at + find_near(b'<', &chunk[at..])?)?;
            let (key, name) = (tag.key, &chunk[tag.name.clone()]);
            // Names without a key are left to the lexer, as are `p` and `br` end tags
            // (they end foreign content) and any tag of a kind the skimmer watches.
            if key == 0 || !matches!(Kind::of(key), Kind::Other | Kind::Void | Kind::RawText) && key != SVG {
                return None;
            }
            if tag.end_tag {
                if Namespaces::end_tag_leaves_foreign(key) {
                    return None;
                }
                match open.nearest(key) {
                    Some(0) => return Some(tag.end),
                    Some(i) => open.close(i),
                    // Closing an element from before the subtree: lol_html must see it.
                    None if self.open.find(key, name).is_some() => return None,
                    None => {}
                }
            } else {
                // In SVG, raw text elements are read as markup, and a start tag is kept
                // open unless self-closing, void or not.
                if key == SVG
                    || !Namespaces::stays_in_svg(key, name)
                    || self.open.len() + open.len() >= MAX_OPEN_ELEMENTS
                {
                    return None;
                }
                if !tag.self_closing {
                    open.push(key)?;
                }
            }
            at = tag.end;
        }
    }
}

/// The elements open in an SVG subtree, its `<svg>` first.
#[derive(Default)]
struct SubtreeStack {
    keys: [Key; SubtreeStack::DEPTH],
    len: usize,
}

impl SubtreeStack {
    /// Deeper subtrees are left to the lexer.
    const DEPTH: usize = 16;

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, key: Key) -> Option<()> {
        *self.keys.get_mut(self.len)? = key;
        self.len += 1;
        Some(())
    }

    fn nearest(&self, key: Key) -> Option<usize> {
        self.keys[..self.len].iter().rposition(|&k| k == key)
    }

    fn close(&mut self, i: usize) {
        self.len = i;
    }
}

/// Where a tag ends, and whether it is self-closing, reading its attributes from `at`
/// (just after its name) with the lexer's reader; `None` at the chunk's end.
fn attributes_end(chunk: &[u8], mut at: usize) -> Option<(usize, bool)> {
    match attributes::read(Attr::BeforeName, chunk, &mut at, &mut NoNames) {
        Read::End(end) => Some((at, end == TagEnd::SelfClosing)),
        Read::More(_) => None,
    }
}
