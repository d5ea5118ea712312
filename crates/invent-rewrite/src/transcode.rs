//! A compressed page on its way through the rewrite: decoded before lol_html reads it, and
//! encoded again after, by codecs the caller supplies (the proxy's own are gzip, deflate,
//! brotli and zstd).

use std::io;

use bytes::Bytes;

/// Decodes a page's content coding in bounded steps.
pub trait Decode: Send {
    /// Decodes from the start of `input`: how many input bytes it took, and what it
    /// decoded — at most a bounded step's worth, however much the input expands. With
    /// empty `input` it hands out output it still holds. `(0, empty)` with input left
    /// would mean no progress: that must be an error.
    fn step(&mut self, input: &[u8]) -> io::Result<(usize, Bytes)>;

    /// The end of the input: an error unless the compressed stream ended properly, so a
    /// cut page never looks complete.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Encodes the rewritten page in the page's content coding, piece by piece.
pub trait Encode: Send {
    /// Encodes `input`, returning the bytes that decode to all of it so far.
    fn push(&mut self, input: &[u8]) -> io::Result<Bytes>;

    /// Encodes the last `input` and ends the stream.
    fn finish(self: Box<Self>, input: &[u8]) -> io::Result<Bytes>;
}

/// How a compressed page is read and sent on: decoded, and encoded again if the client
/// accepts the coding (else sent as identity). The default passes bytes as they are.
#[derive(Default)]
pub struct Transcode {
    pub decoder: Option<Box<dyn Decode>>,
    pub encoder: Option<Box<dyn Encode>>,
}
