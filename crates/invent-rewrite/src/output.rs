//! The rewritten page on its way out: lol_html's output and the bytes that went around it,
//! in page order, with the large pieces shared with the upstream's chunks instead of copied.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use lol_html::OutputSink;

/// A piece of an upstream chunk at least this long is sent as a slice of that chunk; a
/// shorter one is copied, which costs less than one more frame on the wire. Unit tests
/// share nearly every piece, so that the differential test covers sharing.
const MIN_SHARED: usize = if cfg!(test) { 8 } else { 2 * 1024 };

/// What the page has produced and the body has not handed on yet.
#[derive(Default)]
pub(super) struct Output {
    /// Finished pieces, in order; all of them come before `tail`.
    parts: Vec<Bytes>,
    /// lol_html's output and short pieces, copied.
    tail: BytesMut,
}

/// The output, shared between the body and lol_html's sink.
pub(super) type SharedOutput = Arc<Mutex<Output>>;

/// Locks the output; a panic elsewhere while it was locked leaves bytes, not a broken lock.
pub(super) fn lock(output: &Mutex<Output>) -> MutexGuard<'_, Output> {
    output.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Output {
    /// Adds `bytes`, which may be a piece of `source`: a long piece is shared with it.
    pub(super) fn pass(&mut self, source: Option<&Bytes>, bytes: &[u8]) {
        match source {
            Some(source) if bytes.len() >= MIN_SHARED && contains(source, bytes) => {
                self.share(source.slice_ref(bytes));
            }
            _ => self.tail.extend_from_slice(bytes),
        }
    }

    /// Adds a whole chunk as it is, without copying it.
    pub(super) fn share(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if !self.tail.is_empty() {
            self.parts.push(self.tail.split().freeze());
        }
        self.parts.push(bytes);
    }

    /// How many bytes are waiting.
    pub(super) fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum::<usize>() + self.tail.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tail.is_empty() && self.parts.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.parts.clear();
        self.tail.clear();
    }

    /// Takes everything waiting, in order.
    pub(super) fn take(&mut self) -> Vec<Bytes> {
        if !self.tail.is_empty() {
            self.parts.push(self.tail.split().freeze());
        }
        std::mem::take(&mut self.parts)
    }

    /// The copied bytes at the end, where lol_html's latest output is.
    pub(super) fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// Drops copied bytes from `len` on: output the client must not get.
    pub(super) fn truncate_tail(&mut self, len: usize) {
        self.tail.truncate(len);
    }
}

/// Whether `piece` lies within `source`'s bytes.
fn contains(source: &Bytes, piece: &[u8]) -> bool {
    let start = source.as_ptr() as usize;
    let at = piece.as_ptr() as usize;
    at >= start && at + piece.len() <= start + source.len()
}

/// Collects the rewriter's output until the body hands it on.
pub(super) struct Sink(pub(super) SharedOutput);

impl OutputSink for Sink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        lock(&self.0).tail.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_pieces_of_the_source_are_shared_and_the_order_is_kept() {
        let source = Bytes::from(vec![b'a'; 3 * MIN_SHARED]);
        let mut output = Output::default();
        output.pass(Some(&source), b"<x>");
        output.pass(Some(&source), &source[..MIN_SHARED]);
        output.pass(Some(&source), &source[MIN_SHARED..MIN_SHARED + 1]);
        output.pass(None, b"</x>");
        assert_eq!(output.len(), 3 + MIN_SHARED + 1 + 4);
        let parts = output.take();
        assert_eq!(parts.len(), 3);
        assert_eq!(&parts[0][..], b"<x>");
        assert_eq!(parts[1].as_ptr(), source.as_ptr(), "the long piece is the source's own bytes");
        assert_eq!(&parts[2][..], b"a</x>");
        assert!(output.is_empty());
    }

    #[test]
    fn bytes_from_elsewhere_are_copied() {
        let source = Bytes::from(vec![b'a'; 2 * MIN_SHARED]);
        let elsewhere = vec![b'b'; 2 * MIN_SHARED];
        let mut output = Output::default();
        output.pass(Some(&source), &elsewhere);
        let parts = output.take();
        assert_eq!(parts.len(), 1);
        assert_ne!(parts[0].as_ptr(), elsewhere.as_ptr());
        assert_eq!(parts[0], elsewhere);
    }
}
