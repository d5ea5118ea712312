//! Ordinary tags, read in one tight loop: most of a page's markup is tags that only open
//! or close an element lol_html does not watch, and each of them needs no more than its
//! name and its end found, and the open elements updated.
//!
//! While the page is passed in the HTML document, the loop takes tag after tag that is
//! whole in the chunk, is a start tag of an element that is neither watched nor switches
//! the tokenizer (not `Kind::Page`, `Meta`, `Script`, raw text, SVG, MathML, the widget),
//! or an end tag that closes no element lol_html has seen, and whose attributes are of the
//! common shapes. An inline SVG icon is read whole too, when it is whole in the chunk,
//! holds only elements that stay in SVG (no `<script>`, no nested `<svg>`, no HTML
//! integration point) and closes nothing opened before it: it leaves the open elements as
//! they were. At anything else — a comment, a tag cut by the chunk's end, a `/` not
//! followed by `>` — it stops at the construct's `<` and leaves it to the lexer, which
//! reads everything. Where it reads a tag, it reads it as the lexer's states do (the
//! differential test holds both to lol_html).

use std::ops::Range;

use super::lexer::{ATTR_NAME_ENDS, UNQUOTED_VALUE_ENDS, find_near, is_whitespace, run_len};
use super::names::{self, Key, Kind, Namespaces};
use super::{MAX_HELD, MAX_OPEN_ELEMENTS, Skimmer};

/// An ordinary tag read whole: what it does to the open elements.
enum Effect {
    /// Opens an element: the key and place in the chunk of its name.
    Open(Key, Range<usize>),
    /// Closes the open element at this place in the stack, and all above it.
    Close(usize),
    None,
}

impl Skimmer {
    /// Reads ordinary tags and the text between them from `at`; stops at the `<` of
    /// anything else, or at the chunk's end. The lexer is in the data state before and
    /// after, and the bytes read go the way the page goes now: passed.
    pub(super) fn pass_ordinary_tags(&mut self, chunk: &[u8], at: &mut usize) {
        while let Some(lt) = find_near(b'<', &chunk[*at..]) {
            let start = *at + lt;
            let Some((end, effect)) = self.ordinary_tag(chunk, start) else {
                *at = start;
                return;
            };
            match effect {
                Effect::Open(key, name) => self.open.push(key, &chunk[name]),
                Effect::Close(i) => {
                    self.open.pop_to(i);
                    self.synced = self.synced.min(self.open.len());
                }
                Effect::None => {}
            }
            *at = end;
        }
        *at = chunk.len();
    }

    /// The tag at `chunk[start]` (a `<`), if it is an ordinary one and whole in the chunk:
    /// where it ends, and what it does.
    fn ordinary_tag(&self, chunk: &[u8], start: usize) -> Option<(usize, Effect)> {
        let end_tag = chunk.get(start + 1) == Some(&b'/');
        let from = start + 1 + usize::from(end_tag);
        if !chunk.get(from)?.is_ascii_alphabetic() {
            return None;
        }
        let (len, key) = names::read_name(&chunk[from..]);
        if from + len == chunk.len() || len > MAX_HELD {
            return None;
        }
        let name = &chunk[from..from + len];
        let kind = Kind::of(key);
        let effect = if end_tag {
            // lol_html must see the page's frame close, and any element it has seen.
            if kind == Kind::Page {
                return None;
            }
            match self.open.find(key, name) {
                Some(i) if i < self.synced => return None,
                Some(i) => Effect::Close(i),
                None => Effect::None,
            }
        } else {
            match kind {
                Kind::Svg => return Some((self.svg_subtree(chunk, from + len)?, Effect::None)),
                _ if self.open.len() >= MAX_OPEN_ELEMENTS => return None,
                Kind::Other => Effect::Open(key, from..from + len),
                // Not kept open (in HTML, even when written `<x/>`).
                Kind::Void => Effect::None,
                _ => return None,
            }
        };
        Some((attributes_end(chunk, from + len)?.0, effect))
    }

    /// The SVG subtree whose `<svg` tag's attributes start at `chunk[attributes]`, if it
    /// is an ordinary one and whole in the chunk: where it ends. The elements it opens
    /// are all closed again by its `</svg>`.
    fn svg_subtree(&self, chunk: &[u8], attributes: usize) -> Option<usize> {
        const SVG: Key = names::key(b"svg");
        let (mut at, self_closing) = attributes_end(chunk, attributes)?;
        if self_closing {
            return None;
        }
        let mut open = SubtreeStack::default();
        open.push(SVG)?;
        loop {
            let start = at + find_near(b'<', &chunk[at..])?;
            let end_tag = chunk.get(start + 1) == Some(&b'/');
            let from = start + 1 + usize::from(end_tag);
            if !chunk.get(from)?.is_ascii_alphabetic() {
                return None;
            }
            let (len, key) = names::read_name(&chunk[from..]);
            let (end, self_closing) = attributes_end(chunk, from + len)?;
            // Names without a key are left to the lexer, as are `p` and `br` end tags
            // (they end foreign content) and any tag of a kind the skimmer watches.
            if key == 0 || !matches!(Kind::of(key), Kind::Other | Kind::Void | Kind::RawText) && key != SVG {
                return None;
            }
            if end_tag {
                if Namespaces::end_tag_leaves_foreign(key) {
                    return None;
                }
                match open.nearest(key) {
                    Some(0) => return Some(end),
                    Some(i) => open.close(i),
                    // Closing an element from before the subtree: lol_html must see it.
                    None if self.open.find(key, &chunk[from..from + len]).is_some() => return None,
                    None => {}
                }
            } else {
                // In SVG, raw text elements are read as markup, and a start tag is kept
                // open unless self-closing, void or not.
                if key == SVG || !Namespaces::stays_in_svg(key) || self.open.len() + open.len() >= MAX_OPEN_ELEMENTS {
                    return None;
                }
                if !self_closing {
                    open.push(key)?;
                }
            }
            at = end;
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

/// Where a tag ends, and whether it is self-closing, reading its attributes from `i`
/// (just after its name) in the states "before attribute name", "attribute name", "after
/// attribute name", "before attribute value" and the values'; `None` at the chunk's end,
/// or at a `/` that is not `/>`.
fn attributes_end(chunk: &[u8], mut i: usize) -> Option<(usize, bool)> {
    loop {
        // Before attribute name (or after a value).
        i += skip_whitespace(chunk.get(i..)?);
        match *chunk.get(i)? {
            b'>' => return Some((i + 1, false)),
            b'/' => return (*chunk.get(i + 1)? == b'>').then_some((i + 2, true)),
            // An attribute name: its first byte may be anything else, even `=` or a quote.
            _ => i += 1 + run_len(chunk.get(i + 1..)?, &ATTR_NAME_ENDS),
        }
        // After attribute name: only `=` starts a value; anything else is read again as
        // before attribute name.
        i += skip_whitespace(chunk.get(i..)?);
        if *chunk.get(i)? != b'=' {
            continue;
        }
        // Before attribute value.
        i += 1;
        i += skip_whitespace(chunk.get(i..)?);
        match *chunk.get(i)? {
            quote @ (b'"' | b'\'') => i += 2 + find_near(quote, chunk.get(i + 1..)?)?,
            // lol_html ends the tag here, back in the data state.
            b'>' => return Some((i + 1, false)),
            _ => i += run_len(&chunk[i..], &UNQUOTED_VALUE_ENDS),
        }
    }
}

fn skip_whitespace(rest: &[u8]) -> usize {
    rest.iter().position(|&b| !is_whitespace(b)).unwrap_or(rest.len())
}
