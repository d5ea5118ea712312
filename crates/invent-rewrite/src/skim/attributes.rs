//! A tag's attributes, read as lol_html's tokenizer reads them: the one reader of the
//! attribute grammar, for the lexer (which may stop anywhere, a chunk's end included) and
//! for the loop over ordinary tags (which reads whole tags only).
//!
//! Its states are lol_html's "before attribute name", "attribute name", "after attribute
//! name", "before attribute value", the attribute value states and "self-closing start
//! tag" (its `parser/state_machine/syntax/tag/`), with lol_html's departure from the HTML
//! standard: a `>` in "before attribute value" (`<style a=>`) ends the tag and goes to the
//! data state, whatever the element. Each state reads a run of bytes at a time.

use std::ops::ControlFlow;

use super::lexer::{find_near, is_whitespace, run_ends, run_len};

/// Where the reader is in a tag, after its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attr {
    BeforeName,
    Name,
    AfterName,
    BeforeValue,
    /// In a value quoted with this byte.
    Quoted(u8),
    Unquoted,
    /// After a `/`: a `>` makes the tag self-closing; anything else is read again before
    /// an attribute name.
    SelfClosing,
}

/// How a tag ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagEnd {
    /// At a `>`: the tokenizer goes to the text state the tag asks for.
    Plain,
    /// At `/>`: the same, and the tag is self-closing.
    SelfClosing,
    /// At a `>` right after `=`: lol_html goes to the data state, whatever the tag.
    ToData,
}

/// Where the reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// The tag ended (at the byte just before where the reader stopped).
    End(TagEnd),
    /// The chunk ended, in this state.
    More(Attr),
}

/// What the reader says of attribute names, to a caller that needs them.
pub(super) trait Names {
    /// An attribute name starts.
    fn start(&mut self);
    /// The next bytes of its name.
    fn bytes(&mut self, bytes: &[u8]);
    /// Its name is complete.
    fn end(&mut self);
}

/// For a caller that needs no names: nothing to do.
pub(super) struct NoNames;

impl Names for NoNames {
    #[inline(always)]
    fn start(&mut self) {}
    #[inline(always)]
    fn bytes(&mut self, _: &[u8]) {}
    #[inline(always)]
    fn end(&mut self) {}
}

/// What ends an attribute name (lol_html's attribute name state).
const ATTR_NAME_ENDS: [bool; 256] = run_ends(b"/>=");
/// What ends an unquoted attribute value.
const UNQUOTED_VALUE_ENDS: [bool; 256] = run_ends(b">");

/// Reads a tag's attributes from `chunk[*at]` in `state`, up to the end of the tag or of
/// the chunk; `at` ends just past the last byte read.
#[inline]
pub(super) fn read(mut state: Attr, chunk: &[u8], at: &mut usize, names: &mut impl Names) -> Read {
    let mut i = *at;
    let read = loop {
        let step = match state {
            Attr::BeforeName => attributes(chunk, &mut i, names),
            Attr::Name => attribute_name(chunk, &mut i, names),
            Attr::AfterName => after_attribute_name(chunk, &mut i),
            Attr::BeforeValue => before_attribute_value(chunk, &mut i),
            Attr::Quoted(quote) => attribute_value_quoted(quote, chunk, &mut i),
            Attr::Unquoted => attribute_value_unquoted(chunk, &mut i),
            Attr::SelfClosing => self_closing_start_tag(chunk, &mut i),
        };
        match step {
            ControlFlow::Continue(next) => state = next,
            ControlFlow::Break(read) => break read,
        }
    };
    *at = i;
    read
}

/// What a state does with the bytes from `chunk[*i]`: goes on in the next state, or stops
/// the reader.
type Step = ControlFlow<Read, Attr>;

/// From "before attribute name", attribute after attribute, each state going straight on
/// to the next as long as it goes where attributes mostly go (name, `=`, value); back to
/// [`read`] at anything else. (The states' steps are inlined: the common path is one
/// loop without a jump on the state.)
#[inline(always)]
fn attributes(chunk: &[u8], i: &mut usize, names: &mut impl Names) -> Step {
    loop {
        let mut next = before_attribute_name(chunk, i, names)?;
        if next == Attr::Name {
            next = attribute_name(chunk, i, names)?;
        }
        if next == Attr::AfterName {
            next = after_attribute_name(chunk, i)?;
        }
        if next == Attr::BeforeValue {
            next = before_attribute_value(chunk, i)?;
        }
        next = match next {
            Attr::Quoted(quote) => attribute_value_quoted(quote, chunk, i)?,
            Attr::Unquoted => attribute_value_unquoted(chunk, i)?,
            _ => next,
        };
        if next != Attr::BeforeName {
            return ControlFlow::Continue(next);
        }
    }
}

const fn end(how: TagEnd) -> Step {
    ControlFlow::Break(Read::End(how))
}

const fn more(state: Attr) -> Step {
    ControlFlow::Break(Read::More(state))
}

#[inline(always)]
fn before_attribute_name(chunk: &[u8], i: &mut usize, names: &mut impl Names) -> Step {
    *i += skip_whitespace(&chunk[*i..]);
    let Some(&b) = chunk.get(*i) else { return more(Attr::BeforeName) };
    *i += 1;
    match b {
        b'>' => end(TagEnd::Plain),
        b'/' => ControlFlow::Continue(Attr::SelfClosing),
        // Any other byte starts a name, even `=` or a quote.
        _ => {
            names.start();
            names.bytes(&chunk[*i - 1..*i]);
            ControlFlow::Continue(Attr::Name)
        }
    }
}

#[inline(always)]
fn attribute_name(chunk: &[u8], i: &mut usize, names: &mut impl Names) -> Step {
    let n = run_len(&chunk[*i..], &ATTR_NAME_ENDS);
    names.bytes(&chunk[*i..*i + n]);
    *i += n;
    let Some(&b) = chunk.get(*i) else { return more(Attr::Name) };
    *i += 1;
    names.end();
    match b {
        b'>' => end(TagEnd::Plain),
        b'/' => ControlFlow::Continue(Attr::SelfClosing),
        b'=' => ControlFlow::Continue(Attr::BeforeValue),
        _ => ControlFlow::Continue(Attr::AfterName),
    }
}

/// Only `=` starts a value; anything else is read again before a name.
#[inline(always)]
fn after_attribute_name(chunk: &[u8], i: &mut usize) -> Step {
    *i += skip_whitespace(&chunk[*i..]);
    match chunk.get(*i) {
        None => more(Attr::AfterName),
        Some(b'=') => {
            *i += 1;
            ControlFlow::Continue(Attr::BeforeValue)
        }
        Some(_) => ControlFlow::Continue(Attr::BeforeName),
    }
}

#[inline(always)]
fn before_attribute_value(chunk: &[u8], i: &mut usize) -> Step {
    *i += skip_whitespace(&chunk[*i..]);
    let Some(&b) = chunk.get(*i) else { return more(Attr::BeforeValue) };
    match b {
        b'"' | b'\'' => {
            *i += 1;
            ControlFlow::Continue(Attr::Quoted(b))
        }
        b'>' => {
            *i += 1;
            end(TagEnd::ToData)
        }
        _ => ControlFlow::Continue(Attr::Unquoted),
    }
}

#[inline(always)]
fn attribute_value_quoted(quote: u8, chunk: &[u8], i: &mut usize) -> Step {
    match find_near(quote, &chunk[*i..]) {
        Some(n) => {
            *i += n + 1;
            ControlFlow::Continue(Attr::BeforeName)
        }
        None => {
            *i = chunk.len();
            more(Attr::Quoted(quote))
        }
    }
}

#[inline(always)]
fn attribute_value_unquoted(chunk: &[u8], i: &mut usize) -> Step {
    *i += run_len(&chunk[*i..], &UNQUOTED_VALUE_ENDS);
    let Some(&b) = chunk.get(*i) else { return more(Attr::Unquoted) };
    *i += 1;
    match b {
        b'>' => end(TagEnd::Plain),
        _ => ControlFlow::Continue(Attr::BeforeName),
    }
}

#[inline(always)]
fn self_closing_start_tag(chunk: &[u8], i: &mut usize) -> Step {
    match chunk.get(*i) {
        None => more(Attr::SelfClosing),
        Some(b'>') => {
            *i += 1;
            end(TagEnd::SelfClosing)
        }
        Some(_) => ControlFlow::Continue(Attr::BeforeName),
    }
}

fn skip_whitespace(rest: &[u8]) -> usize {
    rest.iter().position(|&b| !is_whitespace(b)).unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `tag` (after its name) in chunks of `size` bytes: how it ended and where.
    fn read_in_chunks(tag: &[u8], size: usize) -> Option<(TagEnd, usize)> {
        let mut state = Attr::BeforeName;
        let mut done = 0;
        for chunk in tag.chunks(size) {
            let mut at = 0;
            match read(state, chunk, &mut at, &mut NoNames) {
                Read::End(end) => return Some((end, done + at)),
                Read::More(next) => state = next,
            }
            assert_eq!(at, chunk.len(), "a chunk is read to its end");
            done += chunk.len();
        }
        None
    }

    #[test]
    fn a_tag_ends_where_lol_html_ends_it_however_it_is_cut() {
        let cases: &[(&str, Option<(TagEnd, usize)>)] = &[
            (">x", Some((TagEnd::Plain, 1))),
            (" a=b>x", Some((TagEnd::Plain, 5))),
            (" a = \"x>y\" b\t=\n'>'\x0C>x", Some((TagEnd::Plain, 20))),
            ("/>x", Some((TagEnd::SelfClosing, 2))),
            ("/ >x", Some((TagEnd::Plain, 3))),
            ("/x/>", Some((TagEnd::SelfClosing, 4))),
            (" a/>", Some((TagEnd::SelfClosing, 4))),
            (" a=/>", Some((TagEnd::Plain, 5))),
            (" a=>x", Some((TagEnd::ToData, 4))),
            (" a= >x", Some((TagEnd::ToData, 5))),
            (" =\">\"x>", Some((TagEnd::Plain, 4))),
            (" \"q>", Some((TagEnd::Plain, 4))),
            (" a=b\"c>", Some((TagEnd::Plain, 7))),
            // An unquoted value: a `/` in it or at its end is a byte of the value, and only
            // whitespace (not `\x0B`) or `>` ends it, however long it is.
            (" a=b/c>", Some((TagEnd::Plain, 7))),
            (" a=b/>", Some((TagEnd::Plain, 6))),
            (" a=b\x0B/>", Some((TagEnd::Plain, 7))),
            (" a=b/ />", Some((TagEnd::SelfClosing, 8))),
            (" a=https://example.com/a/b?c=d&e=<f>x", Some((TagEnd::Plain, 36))),
            (" a=0123456789abcdef/0123456789/ b>", Some((TagEnd::Plain, 34))),
            // A name: `/`, `=`, `>` and whitespace end it; `<`, `?`, `!`, `\x0B` do not.
            (" abcdefghijklmnop/>", Some((TagEnd::SelfClosing, 19))),
            (" abcdefg<?!\x0Bhijk/x>", Some((TagEnd::Plain, 19))),
            (" abcdefghijklmno<=p>", Some((TagEnd::Plain, 20))),
            (" abcdefghijklmno>", Some((TagEnd::Plain, 17))),
            (" abcdefghijklmnopqrstuvw\x0C/>", Some((TagEnd::SelfClosing, 27))),
            (" a='>", None),
            (" abcdefghijklmnopqrstuvwxyz", None),
            (" a=bcdefghijklmnopqrstuvwxyz/", None),
            (" a", None),
            ("/", None),
        ];
        for &(tag, expected) in cases {
            for size in 1..=tag.len().max(1) {
                assert_eq!(read_in_chunks(tag.as_bytes(), size), expected, "{tag:?} in chunks of {size}");
            }
        }
    }

    /// Collects the attribute names the reader reports.
    #[derive(Default)]
    struct Collect(Vec<Vec<u8>>, bool);

    impl Names for Collect {
        fn start(&mut self) {
            assert!(!self.1, "a name starts before the last one ended");
            self.0.push(Vec::new());
            self.1 = true;
        }
        fn bytes(&mut self, bytes: &[u8]) {
            if let Some(name) = self.0.last_mut() {
                name.extend_from_slice(bytes);
            }
        }
        fn end(&mut self) {
            self.1 = false;
        }
    }

    #[test]
    fn the_names_are_those_lol_html_reads() {
        let tag = b" src=x SRC = 'y' =q \"a b/c/>";
        for size in 1..=tag.len() {
            let mut names = Collect::default();
            let mut state = Attr::BeforeName;
            for chunk in tag.chunks(size) {
                let mut at = 0;
                if let Read::More(next) = read(state, chunk, &mut at, &mut names) {
                    state = next;
                }
            }
            let expected: [&[u8]; 6] = [b"src", b"SRC", b"=q", b"\"a", b"b", b"c"];
            assert_eq!(names.0, expected, "chunks of {size}");
            assert!(!names.1, "every name ended");
        }
    }
}
