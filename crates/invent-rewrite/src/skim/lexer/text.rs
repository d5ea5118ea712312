//! Text that is not markup, in lol_html's states (its `syntax/text/`): RAWTEXT and RCDATA
//! (read alike), script data with its escaped and double escaped states, and the end tag
//! that closes them — only the element's own.

use super::{Event, Lexer, State, is_whitespace, reconsume};
use crate::skim::attributes::Attr;

/// RAWTEXT and RCDATA: text, `<`, `</`, and an end tag name being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::skim) enum RawText {
    Text,
    Lt,
    EndTagOpen,
    EndTagName,
}

/// Script data; `EscapeStart(n)`: after `<!` and `n` dashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::skim) enum ScriptData {
    Text,
    Lt,
    EndTagOpen,
    EndTagName,
    EscapeStart(u8),
}

/// Script data escaped (after `<!--`); `Lt(n)`: after `<` and `n` bytes of `script`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::skim) enum Escaped {
    Text,
    Dash,
    DashDash,
    Lt(u8),
    EndTagOpen,
    EndTagName,
}

/// Script data double escaped (after `<!--<script`); `EndName(n)`: after `</` and `n`
/// bytes of `script`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::skim) enum DoubleEscaped {
    Start,
    Text,
    Dash,
    DashDash,
    Lt,
    EndName(u8),
    End,
}

/// Whether `b` is byte `n` of `script`, in any case.
fn script_byte(b: u8, n: u8) -> bool {
    b.eq_ignore_ascii_case(&b"script"[usize::from(n)])
}

impl Lexer {
    /// RAWTEXT and RCDATA, with the byte `b` just consumed.
    pub(super) fn raw_text(&mut self, state: RawText, b: u8, chunk: &[u8], at: &mut usize) -> Option<Event> {
        const TEXT: State = State::Raw(RawText::Text);
        match (state, b) {
            (RawText::Text, _) => {
                *at -= 1;
                self.skip_past(b'<', chunk, at, State::Raw(RawText::Lt));
            }
            (RawText::Lt, b'/') => self.state = State::Raw(RawText::EndTagOpen),
            (RawText::Lt, _) => self.state = reconsume(at, TEXT),
            (RawText::EndTagOpen, _) => self.first_raw_end(b, at, State::Raw(RawText::EndTagName), TEXT),
            (RawText::EndTagName, _) => return self.raw_end_name(b, at, TEXT),
        }
        None
    }

    /// Script data, with the byte `b` just consumed.
    pub(super) fn script_data(&mut self, state: ScriptData, b: u8, chunk: &[u8], at: &mut usize) -> Option<Event> {
        const TEXT: State = State::Script(ScriptData::Text);
        match (state, b) {
            (ScriptData::Text, _) => {
                *at -= 1;
                self.skip_past(b'<', chunk, at, State::Script(ScriptData::Lt));
            }
            (ScriptData::Lt, b'/') => self.state = State::Script(ScriptData::EndTagOpen),
            (ScriptData::Lt, b'!') => self.state = State::Script(ScriptData::EscapeStart(0)),
            (ScriptData::EndTagOpen, _) => {
                self.first_raw_end(b, at, State::Script(ScriptData::EndTagName), TEXT);
            }
            (ScriptData::EndTagName, _) => return self.raw_end_name(b, at, TEXT),
            (ScriptData::EscapeStart(0), b'-') => self.state = State::Script(ScriptData::EscapeStart(1)),
            (ScriptData::EscapeStart(_), b'-') => self.state = State::Escaped(Escaped::DashDash),
            (ScriptData::Lt | ScriptData::EscapeStart(_), _) => self.state = reconsume(at, TEXT),
        }
        None
    }

    /// Script data escaped, with the byte `b` just consumed.
    pub(super) fn script_escaped(&mut self, state: Escaped, b: u8, chunk: &[u8], at: &mut usize) -> Option<Event> {
        use Escaped::*;
        let next = match (state, b) {
            (Text, b'-') => Dash,
            (Dash | DashDash, b'-') => DashDash,
            (Text | DashDash, b'<') => Lt(0),
            // To the next `-` or `<`, which is read in this state.
            (Text, _) => {
                *at = memchr::memchr2(b'-', b'<', &chunk[*at..]).map_or(chunk.len(), |i| *at + i);
                Text
            }
            (DashDash, b'>') => {
                self.state = reconsume(at, State::Script(ScriptData::Text));
                return None;
            }
            (DashDash, _) => Text,
            (Lt(5), _) if script_byte(b, 5) => {
                self.state = State::DoubleEscaped(DoubleEscaped::Start);
                return None;
            }
            (Lt(n), _) if script_byte(b, n) => Lt(n + 1),
            (Lt(0), b'/') => EndTagOpen,
            (EndTagOpen, _) => {
                self.first_raw_end(b, at, State::Escaped(EndTagName), State::Escaped(Text));
                return None;
            }
            (EndTagName, _) => return self.raw_end_name(b, at, State::Escaped(Text)),
            (Dash | Lt(_), _) => reconsume(at, Text),
        };
        self.state = State::Escaped(next);
        None
    }

    /// Script data double escaped, with the byte `b` just consumed.
    pub(super) fn script_double_escaped(&mut self, state: DoubleEscaped, b: u8, at: &mut usize) -> Option<Event> {
        use DoubleEscaped::*;
        let ends_name = is_whitespace(b) || b == b'/' || b == b'>';
        self.state = match (state, b) {
            (Start, _) if ends_name => State::DoubleEscaped(Text),
            (Start, _) => reconsume(at, State::Escaped(Escaped::Text)),
            (Text, b'-') => State::DoubleEscaped(Dash),
            (Dash | DashDash, b'-') => State::DoubleEscaped(DashDash),
            (Text | DashDash, b'<') => State::DoubleEscaped(Lt),
            (Text, _) => State::DoubleEscaped(Text),
            (DashDash, b'>') => reconsume(at, State::Script(ScriptData::Text)),
            (DashDash, _) => State::DoubleEscaped(Text),
            (Lt, b'/') => State::DoubleEscaped(EndName(0)),
            (EndName(5), _) if script_byte(b, 5) => State::DoubleEscaped(End),
            (EndName(n), _) if script_byte(b, n) => State::DoubleEscaped(EndName(n + 1)),
            (End, _) if ends_name => State::Escaped(Escaped::Text),
            (Dash | Lt | EndName(_) | End, _) => reconsume(at, State::DoubleEscaped(Text)),
        };
        None
    }

    /// The first byte after `</` in raw text or a script: a letter starts an end tag name
    /// (in state `name`); anything else is text (`fallback`).
    fn first_raw_end(&mut self, b: u8, at: &mut usize, name: State, fallback: State) {
        if b.is_ascii_alphabetic() {
            self.raw_end.clear();
            self.raw_end.push(b);
            self.state = name;
        } else {
            self.state = reconsume(at, fallback);
        }
    }

    /// An end tag name inside raw text or a script: whitespace, `/` or `>` ends it; the
    /// element's own name makes it an end tag, anything else is text (`fallback`).
    fn raw_end_name(&mut self, b: u8, at: &mut usize, fallback: State) -> Option<Event> {
        if b.is_ascii_alphabetic() {
            self.raw_end.push(b);
            return None;
        }
        if !(is_whitespace(b) || b == b'/' || b == b'>') || !self.appropriate() {
            self.state = reconsume(at, fallback);
            return None;
        }
        self.end_tag = true;
        self.self_closing = false;
        self.src.seen = false;
        self.name.clear();
        self.name.extend_from_slice(&self.raw_end);
        self.state = State::Attributes(if b == b'/' { Attr::SelfClosing } else { Attr::BeforeName });
        // The `>` stays for "before attribute name" to end the tag with.
        if b == b'>' {
            *at -= 1;
        }
        Some(Event::Name)
    }

    /// An end tag name inside raw text or a script is the element's own.
    fn appropriate(&self) -> bool {
        self.raw_end.eq_ignore_ascii_case(&self.last_start)
    }
}
