//! The tokenizer states of lol_html, tracked without tokenizing: where each tag, comment and
//! text run of a page starts and ends, so that the skimmer knows what lol_html would see.
//!
//! The states and their transitions are those of lol_html's own state machine (its
//! `parser/state_machine/syntax`), in its groups: the data and tag states here, a tag's
//! attributes in [`super::attributes`], what `<!` starts (comments, doctypes, CDATA
//! sections) in [`markup`], raw text, script data and plain text in [`text`]. The hot
//! states jump with `memchr`; the rest go byte by byte.

mod markup;
mod text;

use markup::{Cdata, Comment, Markup};
use text::{DoubleEscaped, Escaped, RawText, ScriptData};

use super::attributes::{self, Attr, Names, Read, TagEnd};

/// Where the tokenizer is. A state is complete in itself: a chunk may end anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Data,
    TagOpen,
    EndTagOpen,
    TagName,
    /// After a tag's name.
    Attributes(Attr),
    /// After `<!`.
    Markup(Markup),
    BogusComment,
    Doctype,
    Comment(Comment),
    Cdata(Cdata),
    /// RAWTEXT and RCDATA (they end alike: at the element's own end tag).
    Raw(RawText),
    Script(ScriptData),
    Escaped(Escaped),
    DoubleEscaped(DoubleEscaped),
    PlainText,
}

/// How text after a start tag is read, as lol_html's tree builder simulation decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextType {
    Data,
    Raw,
    Script,
    PlainText,
}

impl TextType {
    pub(super) fn state(self) -> State {
        match self {
            TextType::Data => State::Data,
            TextType::Raw => State::Raw(RawText::Text),
            TextType::Script => State::Script(ScriptData::Text),
            TextType::PlainText => State::PlainText,
        }
    }
}

/// What the lexer stopped at: something the skimmer decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    /// The `<` turned out to start a comment, a doctype or plain text.
    NotTag,
    /// A tag's name is complete (in [`Lexer::name`]).
    Name,
    /// A tag is complete; the tokenizer is in the state after it.
    TagEnd,
    /// A comment, doctype or CDATA section ended: back in the data state.
    Closed,
}

pub(super) const fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0C')
}

/// A table of the bytes that end a run: whitespace and `extra`.
pub(super) const fn run_ends(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_whitespace(b as u8);
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// What ends a tag name.
pub(super) const TAG_NAME_ENDS: [bool; 256] = run_ends(b"/>");

/// Where `needle` first is in `haystack`. Attribute values and the text between tags are
/// mostly short: the first bytes are searched eight at a time in a word, which costs less
/// than a vector search's setup.
pub(super) fn find_near(needle: u8, haystack: &[u8]) -> Option<usize> {
    const NEAR: usize = 16;
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = ONES * u64::from(needle);
    let mut words = haystack.chunks_exact(8);
    for (i, word) in words.by_ref().take(NEAR / 8).enumerate() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        // A byte of `x` is zero where the word has the needle; the lowest such byte is
        // the lowest byte with its high bit set here (higher ones may be false).
        let x = u64::from_le_bytes(bytes) ^ pattern;
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(i * 8 + (zeros.trailing_zeros() / 8) as usize);
        }
    }
    let searched = (haystack.len() - words.remainder().len()).min(NEAR);
    let rest = &haystack[searched..];
    let found = if searched < NEAR { rest.iter().position(|&b| b == needle) } else { memchr::memchr(needle, rest) };
    found.map(|i| i + searched)
}

/// How many bytes at the start of `rest` go on the run that `ends` ends.
pub(super) fn run_len(rest: &[u8], ends: &[bool; 256]) -> usize {
    rest.iter().position(|&b| ends[usize::from(b)]).unwrap_or(rest.len())
}

/// Whether the current tag has an attribute named `src`, from the names the attribute
/// reader reports.
#[derive(Debug, Default)]
pub(super) struct SrcAttribute {
    pub(super) seen: bool,
    /// The current attribute's name, while it is short enough to be `src`.
    name: [u8; 3],
    len: usize,
}

impl Names for SrcAttribute {
    fn start(&mut self) {
        self.len = 0;
    }

    /// Only a name of three bytes can be `src`: longer ones are only counted.
    fn bytes(&mut self, bytes: &[u8]) {
        let len = self.len.saturating_add(bytes.len());
        if let Some(name) = self.name.get_mut(self.len..len) {
            name.copy_from_slice(bytes);
        }
        self.len = len;
    }

    fn end(&mut self) {
        if self.len == 3 && self.name.eq_ignore_ascii_case(b"src") {
            self.seen = true;
        }
    }
}

/// The tokenizer state and what it knows of the current tag.
#[derive(Debug)]
pub(super) struct Lexer {
    pub(super) state: State,
    /// Where in the chunk a `<` in the data state started something, since last taken.
    pub(super) opened_at: Option<usize>,
    /// The text type the tag being read switches to (set by the skimmer at its name).
    pub(super) pending_text: TextType,
    /// CDATA sections are read only in foreign content.
    pub(super) cdata_allowed: bool,
    /// The current tag: an end tag?
    pub(super) end_tag: bool,
    pub(super) self_closing: bool,
    /// Whether the current tag has an attribute named `src`.
    pub(super) src: SrcAttribute,
    /// The current tag's name, as written.
    pub(super) name: Vec<u8>,
    /// The name of the last start tag that switched to raw text or script: the end tag
    /// that closes it.
    last_start: Vec<u8>,
    /// The end tag name read inside raw text or a script, to compare with `last_start`.
    raw_end: Vec<u8>,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            state: State::Data,
            opened_at: None,
            pending_text: TextType::Data,
            cdata_allowed: false,
            end_tag: false,
            self_closing: false,
            src: SrcAttribute::default(),
            name: Vec::new(),
            last_start: Vec::new(),
            raw_end: Vec::new(),
        }
    }
}

impl Lexer {
    /// Runs from `at` until the next event; `None` when the chunk is used up.
    pub(super) fn next(&mut self, chunk: &[u8], at: &mut usize) -> Option<Event> {
        while *at < chunk.len() {
            if let Some(event) = self.run(chunk, at) {
                return Some(event);
            }
        }
        None
    }

    /// One step from `chunk[*at]`: consumes at least one byte or returns an event. The
    /// hot states are read here, the others by [`Lexer::step`].
    fn run(&mut self, chunk: &[u8], at: &mut usize) -> Option<Event> {
        let b = chunk[*at];
        match self.state {
            State::Data => {
                self.data(chunk, at);
                None
            }
            State::TagOpen => self.tag_open(b, at),
            State::EndTagOpen => self.end_tag_open(b, at),
            State::TagName => self.tag_name(chunk, at),
            State::Attributes(state) => self.attributes(state, chunk, at),
            _ => {
                *at += 1;
                self.step(b, chunk, at)
            }
        }
    }

    /// Data: to the next `<`, where a tag, comment or doctype may open.
    fn data(&mut self, chunk: &[u8], at: &mut usize) {
        match find_near(b'<', &chunk[*at..]) {
            Some(i) => {
                self.opened_at = Some(*at + i);
                *at += i + 1;
                self.state = State::TagOpen;
            }
            None => *at = chunk.len(),
        }
    }

    /// Tag open: after a `<` in the data state.
    fn tag_open(&mut self, b: u8, at: &mut usize) -> Option<Event> {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {
                *at += 1;
                self.start_tag(false, b);
                self.state = State::TagName;
                None
            }
            b'/' => {
                *at += 1;
                self.state = State::EndTagOpen;
                None
            }
            _ => {
                self.state = match b {
                    b'!' => State::Markup(Markup::Open),
                    b'?' => State::BogusComment,
                    _ => State::Data,
                };
                *at += usize::from(b == b'!' || b == b'?');
                Some(Event::NotTag)
            }
        }
    }

    /// End tag open: after `</`.
    fn end_tag_open(&mut self, b: u8, at: &mut usize) -> Option<Event> {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {
                *at += 1;
                self.start_tag(true, b);
                self.state = State::TagName;
                None
            }
            b'>' => {
                *at += 1;
                self.state = State::Data;
                Some(Event::NotTag)
            }
            _ => {
                self.state = State::BogusComment;
                Some(Event::NotTag)
            }
        }
    }

    /// Tag name: to whitespace, `/` or `>`. The `>` stays for "before attribute name" to
    /// end the tag with.
    fn tag_name(&mut self, chunk: &[u8], at: &mut usize) -> Option<Event> {
        let rest = &chunk[*at..];
        let n = run_len(rest, &TAG_NAME_ENDS);
        self.name.extend_from_slice(&rest[..n]);
        *at += n;
        let &b = rest.get(n)?;
        self.state = State::Attributes(if b == b'/' { Attr::SelfClosing } else { Attr::BeforeName });
        *at += usize::from(b != b'>');
        Some(Event::Name)
    }

    /// A tag's attributes, in the attribute reader's states, up to the end of the tag or
    /// of the chunk.
    fn attributes(&mut self, state: Attr, chunk: &[u8], at: &mut usize) -> Option<Event> {
        match attributes::read(state, chunk, at, &mut self.src) {
            Read::More(state) => {
                self.state = State::Attributes(state);
                None
            }
            Read::End(TagEnd::Plain) => self.tag_end(self.text_state()),
            Read::End(TagEnd::SelfClosing) => {
                self.self_closing = true;
                self.tag_end(self.text_state())
            }
            // lol_html goes to the data state here, whatever the element.
            Read::End(TagEnd::ToData) => self.tag_end(State::Data),
        }
    }

    fn start_tag(&mut self, end: bool, first: u8) {
        self.end_tag = end;
        self.self_closing = false;
        self.src.seen = false;
        self.pending_text = TextType::Data;
        self.name.clear();
        self.name.push(first);
    }

    /// The tag is complete: the state after it.
    fn tag_end(&mut self, next: State) -> Option<Event> {
        // Only raw text and scripts end at an end tag of the last start tag's name.
        if !self.end_tag && self.pending_text != TextType::Data {
            self.last_start.clear();
            self.last_start.extend_from_slice(&self.name);
        }
        self.state = next;
        Some(Event::TagEnd)
    }

    fn text_state(&self) -> State {
        if self.end_tag { State::Data } else { self.pending_text.state() }
    }

    /// Back to the data state after a comment, doctype or CDATA section.
    fn closed(&mut self) -> Option<Event> {
        self.state = State::Data;
        Some(Event::Closed)
    }

    /// Skips to just past `needle`, in state `then`; or to the end of the chunk.
    fn skip_past(&mut self, needle: u8, chunk: &[u8], at: &mut usize, then: State) -> bool {
        match memchr::memchr(needle, &chunk[*at..]) {
            Some(i) => {
                *at += i + 1;
                self.state = then;
                true
            }
            None => {
                *at = chunk.len();
                false
            }
        }
    }

    /// One byte `b`, already consumed, in a state `run` does not read itself, by the
    /// group of lol_html's states it is in. To reconsume it in another state, `at` steps
    /// back.
    #[inline(never)]
    fn step(&mut self, b: u8, chunk: &[u8], at: &mut usize) -> Option<Event> {
        match self.state {
            State::Markup(state) => self.markup_declaration(state, b, at),
            State::BogusComment | State::Doctype => self.bogus_comment(chunk, at),
            State::Comment(state) => self.comment(state, b, chunk, at),
            State::Cdata(state) => self.cdata(state, b, chunk, at),
            State::Raw(state) => self.raw_text(state, b, chunk, at),
            State::Script(state) => self.script_data(state, b, chunk, at),
            State::Escaped(state) => self.script_escaped(state, b, chunk, at),
            State::DoubleEscaped(state) => self.script_double_escaped(state, b, at),
            State::PlainText => {
                *at = chunk.len();
                None
            }
            // Read by `run` itself: reconsumed there.
            State::Data | State::TagOpen | State::EndTagOpen | State::TagName | State::Attributes(_) => {
                *at -= 1;
                None
            }
        }
    }
}

/// Goes to `state` with the byte just consumed read again there.
fn reconsume<S>(at: &mut usize, state: S) -> S {
    *at -= 1;
    state
}

#[cfg(test)]
mod tests {
    use super::find_near;

    #[test]
    fn find_near_finds_the_first_needle_anywhere() {
        for len in 0..48 {
            for at in 0..=len {
                let mut haystack = vec![b'a'; len];
                if at < len {
                    haystack[at] = b'<';
                }
                // A byte one above the needle's, and a later needle, must not mislead it.
                if at + 1 < len {
                    haystack[at + 1] = b'=';
                }
                if at + 3 < len {
                    haystack[at + 3] = b'<';
                }
                let expected = haystack.iter().position(|&b| b == b'<');
                assert_eq!(find_near(b'<', &haystack), expected, "len {len}, at {at}");
            }
        }
        assert_eq!(find_near(0x80, &[0x7F, 0x81, 0x00, 0x80]), Some(3));
        assert_eq!(find_near(0, &[1, 0x81, 0x01, 0x00]), Some(3));
    }
}
