//! Whether a page opens with a doctype, read from its first bytes. A doctype only counts
//! at the start of a document (after a BOM, white space, comments and an XML
//! declaration), which a few bytes show; a lol_html doctype handler would instead make
//! lol_html tokenize every tag of every page in full, costing about 40% of its speed.

/// Leading bytes held while undecided; a prolog longer than this has no doctype.
const MAX_PROLOG: usize = 8 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const DOCTYPE: &[u8] = b"<!doctype";

/// Reads a page's first bytes until it is clear whether it opens with a doctype.
#[derive(Debug, Default)]
pub(super) struct DoctypeScan {
    head: Vec<u8>,
    decided: Option<bool>,
}

impl DoctypeScan {
    /// Takes the next page bytes; `Some` once decided (and only the first time).
    pub(super) fn scan(&mut self, data: &[u8]) -> Option<bool> {
        if self.decided.is_some() {
            return None;
        }
        let room = MAX_PROLOG.saturating_sub(self.head.len());
        self.head.extend_from_slice(&data[..data.len().min(room)]);
        let found = opens_with_doctype(&self.head).or((self.head.len() >= MAX_PROLOG).then_some(false));
        if found.is_some() {
            self.decided = found;
            self.head = Vec::new();
        }
        found
    }
}

/// `Some(true)` if `head` opens with a doctype, `Some(false)` if it does not, `None` if
/// more bytes are needed to tell.
fn opens_with_doctype(head: &[u8]) -> Option<bool> {
    let mut rest = head.strip_prefix(UTF8_BOM).unwrap_or(head);
    if rest.len() < UTF8_BOM.len() && UTF8_BOM.starts_with(rest) && !rest.is_empty() {
        return None;
    }
    loop {
        rest = trim_start_whitespace(rest);
        if rest.is_empty() {
            return None;
        }
        if let Some(comment) = rest.strip_prefix(b"<!--") {
            rest = &comment[find(comment, b"-->")? + 3..];
        } else if let Some(declaration) = rest.strip_prefix(b"<?") {
            rest = &declaration[find(declaration, b">")? + 1..];
        } else if rest.len() < DOCTYPE.len() {
            let prefix_of = |full: &[u8]| full.get(..rest.len()).is_some_and(|f| f.eq_ignore_ascii_case(rest));
            return if prefix_of(DOCTYPE) || prefix_of(b"<!--") { None } else { Some(false) };
        } else {
            return Some(rest[..DOCTYPE.len()].eq_ignore_ascii_case(DOCTYPE));
        }
    }
}

fn trim_start_whitespace(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C')).unwrap_or(bytes.len());
    &bytes[start..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doctype_counts_only_at_the_start() {
        for page in [
            &b"<!DOCTYPE html><p>x"[..],
            b"\xEF\xBB\xBF<!doctype html>",
            b"\n  <!-- generated --> <!-- again -->\n<!DocType html>",
            b"<?xml version=\"1.0\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\">",
        ] {
            assert_eq!(opens_with_doctype(page), Some(true), "{}", String::from_utf8_lossy(page));
        }
        for fragment in [&b"<div><!DOCTYPE html>"[..], b"hello", b"<!-- x --><p>", b"<!docx"] {
            assert_eq!(opens_with_doctype(fragment), Some(false), "{}", String::from_utf8_lossy(fragment));
        }
        for undecided in [&b""[..], b"\xEF\xBB", b"  <", b"<!DOC", b"<!-- not closed", b"<?xml "] {
            assert_eq!(opens_with_doctype(undecided), None, "{}", String::from_utf8_lossy(undecided));
        }
    }

    #[test]
    fn the_answer_is_the_same_however_the_bytes_are_split() {
        let page = b"\xEF\xBB\xBF <!-- a -- b --> <?xml?> <!doctype html><html>";
        for cut in 0..page.len() {
            let mut scan = DoctypeScan::default();
            let first = scan.scan(&page[..cut]);
            let answer = first.or_else(|| scan.scan(&page[cut..]));
            assert_eq!(answer, Some(true), "cut at {cut}");
            assert_eq!(scan.scan(b"more"), None, "decided once");
        }
        let mut endless = DoctypeScan::default();
        assert_eq!(endless.scan(&[b"<!--".as_slice(), &[b'x'; MAX_PROLOG]].concat()), Some(false));
    }
}
