//! Whether a page opens with a doctype, read from its first bytes as the HTML tokenizer and
//! the tree builder's "initial" insertion mode read them: after a UTF-8 BOM, only white
//! space and comments may come before the doctype. Comments include the tokenizer's bogus
//! ones (`<!>`, `<!x>`, `<?xml …?>`, `</ x>`, `<![CDATA[…>` outside foreign content) and
//! the abruptly closed `<!-->` and `<!--->`; `</>` is nothing at all. A few bytes show it;
//! a lol_html doctype handler would instead make lol_html tokenize every tag of every page
//! in full, costing about 40% of its speed. The tests hold it to lol_html's own tokenizer.

/// Leading bytes read while undecided; a prolog longer than this has no doctype.
const MAX_PROLOG: usize = 8 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// After `<!`, case-insensitively.
const DOCTYPE: &[u8] = b"doctype";

/// Where the tokenizer stands in the prolog (its states, reduced to what the answer needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start: this many bytes of a UTF-8 BOM read.
    Bom(u8),
    /// Between tokens (the data state, white space so far).
    Between,
    /// After `<`.
    TagOpen,
    /// After `</`.
    EndTagOpen,
    /// After `<!-`.
    DeclarationDash,
    /// After `<!` and this many bytes of `doctype` (0: right after `<!`).
    Declaration(u8),
    /// In a bogus comment: it ends at the first `>`.
    BogusComment,
    /// After `<!--`.
    CommentStart,
    CommentStartDash,
    Comment,
    CommentEndDash,
    /// After `--` in a comment.
    CommentEnd,
    /// After `--!` in a comment.
    CommentEndBang,
}

/// What one byte did.
enum Step {
    /// Consumed; go on from this state.
    Next(State),
    /// Not consumed: read it again in this state.
    Again(State),
    Decided(bool),
}

/// Reads a page's first bytes until it is clear whether it opens with a doctype. It keeps
/// no bytes, only the tokenizer's state: any split of the bytes gives the same answer.
#[derive(Debug)]
pub(super) struct DoctypeScan {
    state: State,
    /// Bytes read so far.
    read: usize,
    decided: bool,
}

impl Default for DoctypeScan {
    fn default() -> Self {
        DoctypeScan { state: State::Bom(0), read: 0, decided: false }
    }
}

impl DoctypeScan {
    /// Takes the next page bytes; `Some` once decided (and only the first time).
    pub(super) fn scan(&mut self, data: &[u8]) -> Option<bool> {
        if self.decided {
            return None;
        }
        let room = MAX_PROLOG - self.read;
        let data = &data[..data.len().min(room)];
        let found = self.read_prolog(data).or((self.read >= MAX_PROLOG).then_some(false));
        self.decided = found.is_some();
        found
    }

    /// Runs the tokenizer over `data`, until the answer or the end of `data`.
    fn read_prolog(&mut self, data: &[u8]) -> Option<bool> {
        let mut at = 0;
        while at < data.len() {
            // The long runs (comments) are skipped at memchr speed.
            let skip_to = match self.state {
                State::Comment => Some(memchr::memchr(b'-', &data[at..])),
                State::BogusComment => Some(memchr::memchr(b'>', &data[at..])),
                _ => None,
            };
            if let Some(found) = skip_to {
                at = found.map_or(data.len(), |n| at + n);
                if at == data.len() {
                    break;
                }
            }
            match step(self.state, data[at]) {
                Step::Next(state) => {
                    self.state = state;
                    at += 1;
                }
                Step::Again(state) => self.state = state,
                Step::Decided(answer) => return Some(answer),
            }
        }
        self.read += data.len();
        None
    }
}

/// The tokenizer's step on one byte of the prolog (WHATWG HTML, 13.2.5: the data, tag
/// open, end tag open, markup declaration open, bogus comment and comment states).
fn step(state: State, byte: u8) -> Step {
    use State::*;
    use Step::{Again, Decided, Next};
    match (state, byte) {
        (Bom(n), _) if byte == UTF8_BOM[usize::from(n)] => Next(if n == 2 { Between } else { Bom(n + 1) }),
        (Bom(0), _) => Again(Between),
        // Part of a BOM and then something else: text.
        (Bom(_), _) => Decided(false),
        (Between, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C') => Next(Between),
        (Between, b'<') => Next(TagOpen),
        (TagOpen, b'!') => Next(Declaration(0)),
        (TagOpen, b'/') => Next(EndTagOpen),
        (TagOpen, b'?') => Next(BogusComment),
        (EndTagOpen, b'>') => Next(Between),
        // Text, a start tag (or `<` as text), an end tag.
        (Between | TagOpen, _) => Decided(false),
        (EndTagOpen, _) if byte.is_ascii_alphabetic() => Decided(false),
        (EndTagOpen, _) => Again(BogusComment),
        (Declaration(0), b'-') => Next(DeclarationDash),
        (DeclarationDash, b'-') => Next(CommentStart),
        (Declaration(n), _) if byte.eq_ignore_ascii_case(&DOCTYPE[usize::from(n)]) => {
            if usize::from(n) + 1 == DOCTYPE.len() { Decided(true) } else { Next(Declaration(n + 1)) }
        }
        // Neither `--` nor `doctype` (`[CDATA[` makes a bogus comment too, out of foreign
        // content): a bogus comment, which may end at this very byte.
        (Declaration(_) | DeclarationDash, _) => Again(BogusComment),
        (BogusComment, b'>') => Next(Between),
        (CommentStart | CommentStartDash, b'>') => Next(Between),
        (CommentStart, b'-') => Next(CommentStartDash),
        (CommentStartDash | CommentEndDash | CommentEnd, b'-') => Next(CommentEnd),
        (Comment | CommentEndBang, b'-') => Next(CommentEndDash),
        (CommentEnd | CommentEndBang, b'>') => Next(Between),
        (CommentEnd, b'!') => Next(CommentEndBang),
        (BogusComment, _) => Next(BogusComment),
        (CommentStart | CommentStartDash | Comment | CommentEndDash | CommentEnd | CommentEndBang, _) => Next(Comment),
    }
}

/// `Some(true)` if `head` opens with a doctype, `Some(false)` if it does not, `None` if
/// more bytes are needed to tell.
#[cfg(test)]
fn opens_with_doctype(head: &[u8]) -> Option<bool> {
    DoctypeScan::default().scan(head)
}

#[cfg(test)]
mod tests;
