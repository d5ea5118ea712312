//! The tokenizer states of lol_html, tracked without tokenizing: where each tag, comment and
//! text run of a page starts and ends, so that the skimmer knows what lol_html would see.
//!
//! The states and their transitions are those of lol_html's own state machine (its
//! `parser/state_machine/syntax`), including where it differs from the HTML standard: a
//! tag that ends in "before attribute value" (`<style a=>`) leaves the tokenizer in the
//! data state. The hot states jump with `memchr`; the rest go byte by byte.

/// Where the tokenizer is. A state is complete in itself: a chunk may end anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Data,
    TagOpen,
    EndTagOpen,
    TagName,
    BeforeAttrName,
    AttrName,
    AfterAttrName,
    BeforeAttrValue,
    AttrValueQuoted(u8),
    AttrValueUnquoted,
    SelfClosing,
    /// After `<!`: then `--`, `DOCTYPE` or `[CDATA[` matched so far (`n` bytes).
    MarkupOpen,
    MarkupDash,
    MarkupDoctype(u8),
    MarkupCdata(u8),
    BogusComment,
    Doctype,
    CommentStart,
    CommentStartDash,
    Comment,
    CommentLt,
    CommentLtBang,
    CommentLtBangDash,
    CommentLtBangDashDash,
    CommentEndDash,
    CommentEnd,
    CommentEndBang,
    Cdata,
    CdataBracket(u8),
    /// RAWTEXT and RCDATA (they end alike: at the element's own end tag).
    Raw,
    RawLt,
    RawEndTagOpen,
    RawEndTagName,
    Script,
    ScriptLt,
    ScriptEndTagOpen,
    ScriptEndTagName,
    ScriptEscapeStart(u8),
    Escaped,
    EscapedDash,
    EscapedDashDash,
    EscapedLt(u8),
    EscapedEndTagOpen,
    EscapedEndTagName,
    DoubleEscapedStart,
    DoubleEscaped,
    DoubleEscapedDash,
    DoubleEscapedDashDash,
    DoubleEscapedLt,
    DoubleEscapedEndName(u8),
    DoubleEscapedEnd,
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
            TextType::Raw => State::Raw,
            TextType::Script => State::Script,
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
const fn run_ends(extra: &[u8]) -> [bool; 256] {
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
/// What ends an attribute name (lol_html's attribute name state).
pub(super) const ATTR_NAME_ENDS: [bool; 256] = run_ends(b"/>=");
/// What ends an unquoted attribute value.
pub(super) const UNQUOTED_VALUE_ENDS: [bool; 256] = run_ends(b">");

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
    /// The current tag has an attribute named `src`.
    pub(super) has_src: bool,
    /// The current tag's name, as written.
    pub(super) name: Vec<u8>,
    /// The name of the last start tag that switched to raw text or script: the end tag
    /// that closes it.
    last_start: Vec<u8>,
    /// The end tag name read inside raw text or a script, to compare with `last_start`.
    raw_end: Vec<u8>,
    /// The current attribute's name, while it is short enough to be `src`.
    attr: [u8; 3],
    attr_len: usize,
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
            has_src: false,
            name: Vec::new(),
            last_start: Vec::new(),
            raw_end: Vec::new(),
            attr: [0; 3],
            attr_len: 0,
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

    fn start_tag(&mut self, end: bool, first: u8) {
        self.end_tag = end;
        self.self_closing = false;
        self.has_src = false;
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

    fn attr_start(&mut self) {
        self.attr_len = 0;
    }

    /// The next bytes of the current attribute's name. Only a name of three bytes can be
    /// `src`: longer ones are only counted.
    fn attr_bytes(&mut self, bytes: &[u8]) {
        let len = self.attr_len.saturating_add(bytes.len());
        if len <= self.attr.len() {
            for (i, &b) in bytes.iter().enumerate() {
                self.attr[self.attr_len + i] = b;
            }
        }
        self.attr_len = len;
    }

    /// The attribute name that starts or goes on at `chunk[from]`, to the end of its run:
    /// where the lexer goes on from.
    fn attr_name_run(&mut self, chunk: &[u8], from: usize) -> usize {
        let end = from + 1 + run_len(&chunk[from + 1..], &ATTR_NAME_ENDS);
        self.attr_bytes(&chunk[from..end]);
        end
    }

    fn attr_done(&mut self) {
        if self.attr_len == 3 && self.attr.eq_ignore_ascii_case(b"src") {
            self.has_src = true;
        }
        self.attr_len = usize::MAX;
    }

    /// The attributes of a tag, in one loop (most of a page's markup is attributes), up to
    /// the end of the tag or of the chunk.
    fn attributes(&mut self, chunk: &[u8], at: &mut usize) -> Option<Event> {
        use State::*;
        let mut state = self.state;
        let mut i = *at;
        while let Some(&b) = chunk.get(i) {
            i += 1;
            state = match state {
                BeforeAttrName | AfterAttrName if is_whitespace(b) => state,
                BeforeAttrValue if is_whitespace(b) => state,
                BeforeAttrName | AfterAttrName | AttrName | AttrValueUnquoted if b == b'>' => {
                    if state == AttrName {
                        self.attr_done();
                    }
                    *at = i;
                    return self.tag_end(self.text_state());
                }
                BeforeAttrName | AfterAttrName if b == b'/' => {
                    state = SelfClosing;
                    break;
                }
                AfterAttrName if b == b'=' => BeforeAttrValue,
                BeforeAttrName | AfterAttrName => {
                    self.attr_start();
                    i = self.attr_name_run(chunk, i - 1);
                    AttrName
                }
                AttrName if is_whitespace(b) => {
                    self.attr_done();
                    AfterAttrName
                }
                AttrName if b == b'=' => {
                    self.attr_done();
                    BeforeAttrValue
                }
                AttrName if b == b'/' => {
                    self.attr_done();
                    state = SelfClosing;
                    break;
                }
                AttrName => {
                    i = self.attr_name_run(chunk, i - 1);
                    AttrName
                }
                BeforeAttrValue if b == b'"' || b == b'\'' => match find_near(b, &chunk[i..]) {
                    Some(n) => {
                        i += n + 1;
                        BeforeAttrName
                    }
                    None => {
                        i = chunk.len();
                        AttrValueQuoted(b)
                    }
                },
                // lol_html goes to the data state here, whatever the element.
                BeforeAttrValue if b == b'>' => {
                    *at = i;
                    return self.tag_end(Data);
                }
                BeforeAttrValue => {
                    i += run_len(&chunk[i..], &UNQUOTED_VALUE_ENDS);
                    AttrValueUnquoted
                }
                AttrValueQuoted(quote) => match memchr::memchr(quote, &chunk[i - 1..]) {
                    Some(n) => {
                        i += n;
                        BeforeAttrName
                    }
                    None => {
                        i = chunk.len();
                        state
                    }
                },
                AttrValueUnquoted if is_whitespace(b) => BeforeAttrName,
                other => other,
            };
        }
        *at = i;
        self.state = state;
        None
    }

    /// An end tag name inside raw text or a script is the element's own.
    fn appropriate(&self) -> bool {
        self.raw_end.eq_ignore_ascii_case(&self.last_start)
    }

    /// One step: consumes at least one byte or returns an event.
    fn run(&mut self, chunk: &[u8], at: &mut usize) -> Option<Event> {
        use State::*;
        let b = chunk[*at];
        match self.state {
            Data => {
                match find_near(b'<', &chunk[*at..]) {
                    Some(i) => {
                        self.opened_at = Some(*at + i);
                        *at += i + 1;
                        self.state = TagOpen;
                    }
                    None => *at = chunk.len(),
                }
                return None;
            }
            TagOpen => {
                return match b {
                    b'a'..=b'z' | b'A'..=b'Z' => {
                        *at += 1;
                        self.start_tag(false, b);
                        self.state = TagName;
                        None
                    }
                    b'!' => {
                        *at += 1;
                        self.state = MarkupOpen;
                        Some(Event::NotTag)
                    }
                    b'/' => {
                        *at += 1;
                        self.state = EndTagOpen;
                        None
                    }
                    b'?' => {
                        *at += 1;
                        self.state = BogusComment;
                        Some(Event::NotTag)
                    }
                    _ => {
                        self.state = Data;
                        Some(Event::NotTag)
                    }
                };
            }
            EndTagOpen => {
                return match b {
                    b'a'..=b'z' | b'A'..=b'Z' => {
                        *at += 1;
                        self.start_tag(true, b);
                        self.state = TagName;
                        None
                    }
                    b'>' => {
                        *at += 1;
                        self.state = Data;
                        Some(Event::NotTag)
                    }
                    _ => {
                        self.state = BogusComment;
                        Some(Event::NotTag)
                    }
                };
            }
            TagName => {
                let rest = &chunk[*at..];
                let n = run_len(rest, &TAG_NAME_ENDS);
                self.name.extend_from_slice(&rest[..n]);
                *at += n;
                if n == rest.len() {
                    return None;
                }
                // The `>` stays for "before attribute name" to end the tag with.
                self.state = match chunk[*at] {
                    b'>' => BeforeAttrName,
                    b'/' => SelfClosing,
                    _ => BeforeAttrName,
                };
                if chunk[*at] != b'>' {
                    *at += 1;
                }
                return Some(Event::Name);
            }
            BeforeAttrName | AttrName | AfterAttrName | BeforeAttrValue | AttrValueQuoted(_) | AttrValueUnquoted => {
                return self.attributes(chunk, at);
            }
            _ => {}
        }
        let &b = chunk.get(*at)?;
        *at += 1;
        self.step(b, chunk, at)
    }

    /// An end tag name inside raw text or a script: `delimiter` ends it; the element's
    /// own name makes it an end tag, anything else is text (`fallback`).
    fn raw_end_name(&mut self, b: u8, at: &mut usize, fallback: State) -> Option<Event> {
        if b.is_ascii_alphabetic() {
            self.raw_end.push(b);
            return None;
        }
        if !(is_whitespace(b) || b == b'/' || b == b'>') || !self.appropriate() {
            *at -= 1;
            self.state = fallback;
            return None;
        }
        self.end_tag = true;
        self.self_closing = false;
        self.has_src = false;
        self.name.clear();
        self.name.extend_from_slice(&self.raw_end);
        self.state = if b == b'/' { State::SelfClosing } else { State::BeforeAttrName };
        if b == b'>' {
            *at -= 1;
        }
        Some(Event::Name)
    }

    fn first_raw_end(&mut self, b: u8, at: &mut usize, name: State, fallback: State) {
        if b.is_ascii_alphabetic() {
            self.raw_end.clear();
            self.raw_end.push(b);
            self.state = name;
        } else {
            *at -= 1;
            self.state = fallback;
        }
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

    /// One byte `b`, already consumed, in a state `run` does not read itself. To
    /// reconsume it in another state, `at` steps back.
    #[inline(never)]
    fn step(&mut self, b: u8, chunk: &[u8], at: &mut usize) -> Option<Event> {
        use State::*;
        match self.state {
            SelfClosing => {
                if b == b'>' {
                    self.self_closing = true;
                    return self.tag_end(self.text_state());
                }
                *at -= 1;
                self.state = BeforeAttrName;
            }
            MarkupOpen => match b {
                b'-' => self.state = MarkupDash,
                b'd' | b'D' => self.state = MarkupDoctype(1),
                b'[' => self.state = MarkupCdata(1),
                _ => {
                    *at -= 1;
                    self.state = BogusComment;
                }
            },
            MarkupDash => {
                if b == b'-' {
                    self.state = CommentStart;
                } else {
                    *at -= 1;
                    self.state = BogusComment;
                }
            }
            MarkupDoctype(n) => {
                if b.eq_ignore_ascii_case(&b"doctype"[usize::from(n)]) {
                    self.state = if n == 6 { Doctype } else { MarkupDoctype(n + 1) };
                } else {
                    *at -= 1;
                    self.state = BogusComment;
                }
            }
            MarkupCdata(n) => {
                if b == b"[CDATA["[usize::from(n)] {
                    self.state = match n {
                        6 if self.cdata_allowed => Cdata,
                        6 => BogusComment,
                        _ => MarkupCdata(n + 1),
                    };
                } else {
                    *at -= 1;
                    self.state = BogusComment;
                }
            }
            BogusComment | Doctype => {
                *at -= 1;
                if self.skip_past(b'>', chunk, at, Data) {
                    return Some(Event::Closed);
                }
            }
            CommentStart => match b {
                b'-' => self.state = CommentStartDash,
                b'>' => return self.closed(),
                _ => {
                    *at -= 1;
                    self.state = Comment;
                }
            },
            CommentStartDash => match b {
                b'-' => self.state = CommentEnd,
                b'>' => return self.closed(),
                _ => {
                    *at -= 1;
                    self.state = Comment;
                }
            },
            Comment => match b {
                b'-' => self.state = CommentEndDash,
                b'<' => self.state = CommentLt,
                _ => match memchr::memchr2(b'-', b'<', &chunk[*at..]) {
                    Some(i) => *at += i,
                    None => *at = chunk.len(),
                },
            },
            CommentLt => match b {
                b'!' => self.state = CommentLtBang,
                b'<' => {}
                _ => {
                    *at -= 1;
                    self.state = Comment;
                }
            },
            CommentLtBang => {
                if b == b'-' {
                    self.state = CommentLtBangDash;
                } else {
                    *at -= 1;
                    self.state = Comment;
                }
            }
            CommentLtBangDash => {
                if b == b'-' {
                    self.state = CommentLtBangDashDash;
                } else {
                    *at -= 1;
                    self.state = CommentEndDash;
                }
            }
            CommentLtBangDashDash => {
                *at -= 1;
                self.state = CommentEnd;
            }
            CommentEndDash => {
                if b == b'-' {
                    self.state = CommentEnd;
                } else {
                    *at -= 1;
                    self.state = Comment;
                }
            }
            CommentEnd => match b {
                b'>' => return self.closed(),
                b'!' => self.state = CommentEndBang,
                b'-' => {}
                _ => {
                    *at -= 1;
                    self.state = Comment;
                }
            },
            CommentEndBang => match b {
                b'-' => self.state = CommentEndDash,
                b'>' => return self.closed(),
                _ => {
                    *at -= 1;
                    self.state = Comment;
                }
            },
            Cdata => {
                *at -= 1;
                self.skip_past(b']', chunk, at, CdataBracket(0));
            }
            CdataBracket(0) => {
                if b == b']' {
                    self.state = CdataBracket(1);
                } else {
                    *at -= 1;
                    self.state = Cdata;
                }
            }
            CdataBracket(_) => match b {
                b'>' => return self.closed(),
                b']' => {}
                _ => {
                    *at -= 1;
                    self.state = Cdata;
                }
            },
            Raw => {
                *at -= 1;
                self.skip_past(b'<', chunk, at, RawLt);
            }
            RawLt => {
                if b == b'/' {
                    self.state = RawEndTagOpen;
                } else {
                    *at -= 1;
                    self.state = Raw;
                }
            }
            RawEndTagOpen => self.first_raw_end(b, at, RawEndTagName, Raw),
            RawEndTagName => return self.raw_end_name(b, at, Raw),
            Script => {
                *at -= 1;
                self.skip_past(b'<', chunk, at, ScriptLt);
            }
            ScriptLt => match b {
                b'/' => self.state = ScriptEndTagOpen,
                b'!' => self.state = ScriptEscapeStart(0),
                _ => {
                    *at -= 1;
                    self.state = Script;
                }
            },
            ScriptEndTagOpen => self.first_raw_end(b, at, ScriptEndTagName, Script),
            ScriptEndTagName => return self.raw_end_name(b, at, Script),
            ScriptEscapeStart(n) => {
                if b == b'-' {
                    self.state = if n == 1 { EscapedDashDash } else { ScriptEscapeStart(1) };
                } else {
                    *at -= 1;
                    self.state = Script;
                }
            }
            Escaped => match b {
                b'-' => self.state = EscapedDash,
                b'<' => self.state = EscapedLt(0),
                _ => match memchr::memchr2(b'-', b'<', &chunk[*at..]) {
                    Some(i) => *at += i,
                    None => *at = chunk.len(),
                },
            },
            EscapedDash => {
                if b == b'-' {
                    self.state = EscapedDashDash;
                } else {
                    *at -= 1;
                    self.state = Escaped;
                }
            }
            EscapedDashDash => match b {
                b'-' => {}
                b'<' => self.state = EscapedLt(0),
                b'>' => {
                    *at -= 1;
                    self.state = Script;
                }
                _ => self.state = Escaped,
            },
            EscapedLt(n) => {
                if b.eq_ignore_ascii_case(&b"script"[usize::from(n)]) {
                    self.state = if n == 5 { DoubleEscapedStart } else { EscapedLt(n + 1) };
                } else if n == 0 && b == b'/' {
                    self.state = EscapedEndTagOpen;
                } else {
                    *at -= 1;
                    self.state = Escaped;
                }
            }
            EscapedEndTagOpen => self.first_raw_end(b, at, EscapedEndTagName, Escaped),
            EscapedEndTagName => return self.raw_end_name(b, at, Escaped),
            DoubleEscapedStart => {
                if is_whitespace(b) || b == b'/' || b == b'>' {
                    self.state = DoubleEscaped;
                } else {
                    *at -= 1;
                    self.state = Escaped;
                }
            }
            DoubleEscaped => match b {
                b'-' => self.state = DoubleEscapedDash,
                b'<' => self.state = DoubleEscapedLt,
                _ => {}
            },
            DoubleEscapedDash => {
                if b == b'-' {
                    self.state = DoubleEscapedDashDash;
                } else {
                    *at -= 1;
                    self.state = DoubleEscaped;
                }
            }
            DoubleEscapedDashDash => match b {
                b'-' => {}
                b'<' => self.state = DoubleEscapedLt,
                b'>' => {
                    *at -= 1;
                    self.state = Script;
                }
                _ => self.state = DoubleEscaped,
            },
            DoubleEscapedLt => {
                if b == b'/' {
                    self.state = DoubleEscapedEndName(0);
                } else {
                    *at -= 1;
                    self.state = DoubleEscaped;
                }
            }
            DoubleEscapedEndName(n) => {
                if b.eq_ignore_ascii_case(&b"script"[usize::from(n)]) {
                    self.state = if n == 5 { DoubleEscapedEnd } else { DoubleEscapedEndName(n + 1) };
                } else {
                    *at -= 1;
                    self.state = DoubleEscaped;
                }
            }
            DoubleEscapedEnd => {
                if is_whitespace(b) || b == b'/' || b == b'>' {
                    self.state = Escaped;
                } else {
                    *at -= 1;
                    self.state = DoubleEscaped;
                }
            }
            PlainText => *at = chunk.len(),
            // Read by `run` itself (attributes by `attributes`): reconsumed there.
            Data | TagOpen | EndTagOpen | TagName | BeforeAttrName | AttrName | AfterAttrName | BeforeAttrValue
            | AttrValueQuoted(_) | AttrValueUnquoted => *at -= 1,
        }
        None
    }
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
