//! What `<!` starts, in lol_html's states: the markup declaration open state (its
//! `syntax/tag/mod.rs`), bogus comments and doctypes (both end at the next `>`), comments
//! (`syntax/comment.rs`) and CDATA sections (`syntax/text/cdata_section.rs`).

use super::{Event, Lexer, State, reconsume};

/// Markup declaration open: after `<!`, then `--`, `DOCTYPE` or `[CDATA[` matched so far
/// (`n` bytes). A mismatch is a bogus comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::skim) enum Markup {
    Open,
    Dash,
    Doctype(u8),
    Cdata(u8),
}

/// lol_html's comment states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::skim) enum Comment {
    Start,
    StartDash,
    Text,
    Lt,
    LtBang,
    LtBangDash,
    LtBangDashDash,
    EndDash,
    End,
    EndBang,
}

/// lol_html's CDATA section states: the section, then `]` and `]]` seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::skim) enum Cdata {
    Text,
    Bracket,
    BracketBracket,
}

impl Lexer {
    /// Markup declaration open, with the byte `b` just consumed.
    pub(super) fn markup_declaration(&mut self, state: Markup, b: u8, at: &mut usize) -> Option<Event> {
        self.state = match (state, b) {
            (Markup::Open, b'-') => State::Markup(Markup::Dash),
            (Markup::Open, b'd' | b'D') => State::Markup(Markup::Doctype(1)),
            (Markup::Open, b'[') => State::Markup(Markup::Cdata(1)),
            (Markup::Dash, b'-') => State::Comment(Comment::Start),
            (Markup::Doctype(n), _) if b.eq_ignore_ascii_case(&b"doctype"[usize::from(n)]) => match n {
                6 => State::Doctype,
                _ => State::Markup(Markup::Doctype(n + 1)),
            },
            (Markup::Cdata(n), _) if b == b"[CDATA["[usize::from(n)] => match n {
                6 if self.cdata_allowed => State::Cdata(Cdata::Text),
                6 => State::BogusComment,
                _ => State::Markup(Markup::Cdata(n + 1)),
            },
            _ => reconsume(at, State::BogusComment),
        };
        None
    }

    /// A bogus comment or a doctype: to just past the next `>`.
    pub(super) fn bogus_comment(&mut self, chunk: &[u8], at: &mut usize) -> Option<Event> {
        *at -= 1;
        self.skip_past(b'>', chunk, at, State::Data).then_some(Event::Closed)
    }

    /// The comment states, with the byte `b` just consumed.
    pub(super) fn comment(&mut self, state: Comment, b: u8, chunk: &[u8], at: &mut usize) -> Option<Event> {
        use Comment::*;
        let next = match (state, b) {
            (Start | StartDash | End | EndBang, b'>') => return self.closed(),
            (Start, b'-') => StartDash,
            (StartDash, b'-') | (EndDash, b'-') | (End, b'-') => End,
            (Text | EndBang, b'-') => EndDash,
            (Text, b'<') | (Lt, b'<') => Lt,
            // Comment text: to the next `-` or `<`, which is read in this state.
            (Text, _) => {
                *at = memchr::memchr2(b'-', b'<', &chunk[*at..]).map_or(chunk.len(), |i| *at + i);
                Text
            }
            (Lt, b'!') => LtBang,
            (LtBang, b'-') => LtBangDash,
            (LtBangDash, b'-') => LtBangDashDash,
            (LtBangDash, _) => reconsume(at, EndDash),
            (LtBangDashDash, _) => reconsume(at, End),
            (End, b'!') => EndBang,
            _ => reconsume(at, Text),
        };
        self.state = State::Comment(next);
        None
    }

    /// The CDATA section states, with the byte `b` just consumed.
    pub(super) fn cdata(&mut self, state: Cdata, b: u8, chunk: &[u8], at: &mut usize) -> Option<Event> {
        match (state, b) {
            (Cdata::Text, _) => {
                *at -= 1;
                self.skip_past(b']', chunk, at, State::Cdata(Cdata::Bracket));
            }
            (Cdata::Bracket | Cdata::BracketBracket, b']') => self.state = State::Cdata(Cdata::BracketBracket),
            (Cdata::BracketBracket, b'>') => return self.closed(),
            _ => self.state = reconsume(at, State::Cdata(Cdata::Text)),
        }
        None
    }
}
