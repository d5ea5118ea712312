//! The request line as an HTTP/1 client sent it, for the one thing the parsed request no
//! longer shows: a `#fragment` in the target, which the `http` crate drops without a word
//! (no request-target form has one, RFC 9112 §3.2; Envoy refuses it too).
//!
//! A connection's bytes are read here only where a request line is due: at its start and
//! whenever no request is in flight, up to the line's end — never a body. A line is
//! matched to its request by method and target before its fragment counts, so a line
//! read out of step (a pipelined request, an upload the upstream answered before reading
//! it all) can only be missed, never blamed on another request.

use http::{Method, Uri};

/// The longest target kept to match a line to its request; a longer one is not checked.
const MAX_TARGET: usize = 8 * 1024;

/// Where the scan of a connection's bytes stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request line is due: empty lines before it are skipped (RFC 9112 §2.2).
    #[default]
    Due,
    Method,
    Target,
    /// After the target, up to the end of the line.
    Version,
    /// The line is read; the next is due once no request is in flight.
    Read,
    /// An HTTP/2 connection (its preface `PRI * HTTP/2.0`): nothing more to read.
    Never,
}

/// The request lines of one connection, read as the bytes arrive.
#[derive(Debug, Default)]
pub(super) struct LineScan {
    phase: Phase,
    method: Vec<u8>,
    /// The target up to its `#`, or all of it.
    target: Vec<u8>,
    fragment: bool,
    /// The target was longer than [`MAX_TARGET`]: it cannot be matched.
    overlong: bool,
}

impl LineScan {
    /// Reads `bytes` as far as a request line is due in them.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while let Some((&byte, rest)) = bytes.split_first() {
            match self.phase {
                Phase::Read | Phase::Never => return,
                Phase::Due if matches!(byte, b'\r' | b'\n') => {}
                Phase::Due => {
                    self.start();
                    continue;
                }
                Phase::Method if byte == b' ' => self.phase = Phase::Target,
                Phase::Method => push_bounded(&mut self.method, byte, &mut self.overlong),
                Phase::Target if matches!(byte, b' ' | b'\r' | b'\n') => {
                    self.phase = Phase::Version;
                    continue;
                }
                Phase::Target if byte == b'#' => self.fragment = true,
                Phase::Target if !self.fragment => push_bounded(&mut self.target, byte, &mut self.overlong),
                Phase::Target => {}
                Phase::Version if byte == b'\n' => self.end_line(),
                Phase::Version => {}
            }
            bytes = rest;
        }
    }

    /// No request is in flight any more: the next bytes start a request line.
    pub(super) fn due(&mut self) {
        if self.phase == Phase::Read {
            self.phase = Phase::Due;
        }
    }

    /// Whether the request `method target` came with a `#fragment`: the last line read,
    /// if it is this request's. Each line answers once.
    pub(super) fn had_fragment(&mut self, method: &Method, uri: &Uri) -> bool {
        let line_read = self.phase == Phase::Read;
        let fragment = std::mem::take(&mut self.fragment);
        if !line_read || !fragment || self.overlong || self.method != method.as_str().as_bytes() {
            return false;
        }
        match uri.scheme() {
            None => uri.path_and_query().is_some_and(|pq| pq.as_str().as_bytes() == self.target),
            Some(_) => uri.to_string().as_bytes() == self.target,
        }
    }

    fn start(&mut self) {
        self.phase = Phase::Method;
        self.method.clear();
        self.target.clear();
        self.fragment = false;
        self.overlong = false;
    }

    fn end_line(&mut self) {
        let preface = self.method == b"PRI" && self.target == b"*";
        self.phase = if preface { Phase::Never } else { Phase::Read };
    }
}

fn push_bounded(into: &mut Vec<u8>, byte: u8, overlong: &mut bool) {
    if into.len() < MAX_TARGET {
        into.push(byte);
    } else {
        *overlong = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(chunks: &[&[u8]]) -> LineScan {
        let mut scan = LineScan::default();
        for chunk in chunks {
            scan.feed(chunk);
        }
        scan
    }

    fn uri(target: &str) -> Uri {
        target.parse().unwrap()
    }

    #[test]
    fn a_fragment_is_found_however_the_line_is_split() {
        let line = b"\r\nGET /a/b?c#frag HTTP/1.1\r\nhost: x\r\n\r\n";
        for cut in 0..line.len() {
            let mut scan = scanned(&[&line[..cut], &line[cut..]]);
            assert!(scan.had_fragment(&Method::GET, &uri("/a/b?c")), "cut at {cut}");
            assert!(!scan.had_fragment(&Method::GET, &uri("/a/b?c")), "answered once");
        }
    }

    #[test]
    fn only_the_line_of_the_same_request_counts() {
        let mut scan = scanned(&[b"GET /x#y HTTP/1.1\r\n"]);
        assert!(!scan.had_fragment(&Method::POST, &uri("/x")));
        let mut scan = scanned(&[b"GET /x#y HTTP/1.1\r\n"]);
        assert!(!scan.had_fragment(&Method::GET, &uri("/other")));
        let mut absolute = scanned(&[b"GET http://a.test/x#y HTTP/1.1\r\n"]);
        assert!(absolute.had_fragment(&Method::GET, &uri("http://a.test/x")));
        let mut plain = scanned(&[b"GET /x HTTP/1.1\r\n"]);
        assert!(!plain.had_fragment(&Method::GET, &uri("/x")));
    }

    #[test]
    fn bodies_are_not_read_until_a_line_is_due() {
        let mut scan = scanned(&[b"POST /f HTTP/1.1\r\ncontent-length: 9\r\n\r\nGET /x#y HTTP/1.1\r\n"]);
        assert!(!scan.had_fragment(&Method::POST, &uri("/f")));
        assert!(!scan.had_fragment(&Method::GET, &uri("/x")), "read while a request was in flight");
        scan.due();
        scan.feed(b"GET /z#w HTTP/1.1\r\n");
        assert!(scan.had_fragment(&Method::GET, &uri("/z")));
    }

    #[test]
    fn an_http2_connection_is_not_read_past_its_preface() {
        let mut scan = scanned(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]);
        scan.due();
        scan.feed(b"GET /x#y HTTP/1.1\r\n");
        assert!(!scan.had_fragment(&Method::GET, &uri("/x")));
    }
}
