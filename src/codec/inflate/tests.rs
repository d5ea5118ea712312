//! The decoder against zlib: whatever zlib (flate2's zlib-rs, the proxy's decoder before
//! the splice) makes of a body — valid, cut, corrupt, several gzip members, garbage after
//! them — the scan makes of it too, whatever the chunks it comes in.

use std::io::Write;

use proptest::prelude::*;

use super::super::decode::Decoder;
use super::super::scan::{Scan, Wrap};
use super::super::{Coding, DECODE_STEP};

/// Text that compresses like a page: words, tags, some random bytes, long repeats.
pub(in crate::codec) fn page_like(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "<div class=\"card\">",
        "</div>",
        "<a href=\"/journal/",
        "\">",
        "</a>",
        " lorem",
        " ipsum",
        " dolor",
        "<p>",
        "</p>\n",
        "<svg viewBox=\"0 0 24 24\">",
        "</body>",
    ];
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut page = Vec::with_capacity(len + 64);
    while page.len() < len {
        let r = next();
        match r % 16 {
            0 => page.extend((0..r >> 8 & 31).map(|i| (r >> (i % 48)) as u8)),
            1 if page.len() > 300 => {
                let from = (r >> 8) as usize % (page.len() - 260);
                let n = 3 + (r >> 40) as usize % 255;
                page.extend_from_within(from..from + n);
            }
            _ => page.extend_from_slice(WORDS[(r >> 4) as usize % WORDS.len()].as_bytes()),
        }
    }
    page.truncate(len);
    page
}

/// `data` deflated at `level` with flushes (sync or full, by `flush_kinds`' bits) at
/// `flushes` (sorted offsets), wrapped as `wrap`.
pub(in crate::codec) fn compress(data: &[u8], level: u32, flushes: &[usize], flush_kinds: u64, wrap: &str) -> Vec<u8> {
    let level = flate2::Compression::new(level);
    let mut out = Vec::new();
    let mut deflate = flate2::Compress::new(level, false);
    let mut from = 0;
    let mut points: Vec<usize> = flushes.iter().map(|&f| f.min(data.len())).collect();
    points.push(data.len());
    for (i, &to) in points.iter().enumerate() {
        let to = to.max(from);
        let flush = match (i == points.len() - 1, flush_kinds >> (i % 64) & 1) {
            (true, _) => flate2::FlushCompress::Finish,
            (false, 0) => flate2::FlushCompress::Sync,
            (false, _) => flate2::FlushCompress::Full,
        };
        let mut input = &data[from..to];
        loop {
            out.reserve(input.len() + 1024);
            let before = deflate.total_in();
            let status = deflate.compress_vec(input, &mut out, flush).unwrap();
            input = &input[(deflate.total_in() - before) as usize..];
            let done = match flush {
                flate2::FlushCompress::Finish => status == flate2::Status::StreamEnd,
                _ => input.is_empty() && out.len() < out.capacity(),
            };
            if done {
                break;
            }
        }
        from = to;
    }
    wrapped(&out, data, wrap)
}

/// Raw deflate `deflated` of `data` with a gzip or zlib wrapper around it, or raw.
fn wrapped(deflated: &[u8], data: &[u8], wrap: &str) -> Vec<u8> {
    match wrap {
        "gzip" => {
            let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
            out.extend_from_slice(deflated);
            out.extend_from_slice(&zlib_rs::crc32::crc32(0, data).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out
        }
        "zlib" => {
            let mut out = vec![0x78, 0x9c];
            out.extend_from_slice(deflated);
            out.extend_from_slice(&zlib_rs::adler32::adler32(1, data).to_be_bytes());
            out
        }
        _ => deflated.to_vec(),
    }
}

/// What the proxy made of `body` before the splice: flate2's decoder, all input at once.
fn decoded_by_zlib(coding: Coding, body: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = Decoder::new(coding).ok()?;
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let (used, piece) = decoder.step(rest).ok()?;
        out.extend_from_slice(&piece);
        rest = &rest[used..];
        if used == 0 && piece.is_empty() {
            break;
        }
    }
    decoder.finish().ok()?;
    Some(out)
}

/// What the scan makes of `body` in chunks of the given sizes (cycled), as the rewriter
/// feeds it: `None` for an error.
pub(in crate::codec) fn decoded_by_scan(wrap: Wrap, body: &[u8], chunks: &[usize]) -> Option<Vec<u8>> {
    let mut scan = Scan::new(wrap, DECODE_STEP, false);
    let mut out = Vec::new();
    let mut at = 0;
    for &size in chunks.iter().cycle() {
        let mut rest = &body[at..(at + size.max(1)).min(body.len())];
        at += rest.len();
        loop {
            let (taken, decoded) = scan.step(rest).ok()?;
            assert!(decoded.bytes.len() <= DECODE_STEP + 258);
            out.extend_from_slice(&decoded.bytes);
            rest = &rest[taken..];
            if rest.is_empty() && (decoded.bytes.is_empty() || at < body.len()) {
                break;
            }
        }
        if at == body.len() {
            break;
        }
    }
    // The input has ended: what the scan still holds comes out.
    loop {
        let (_, decoded) = scan.step(&[]).ok()?;
        if decoded.bytes.is_empty() {
            break;
        }
        out.extend_from_slice(&decoded.bytes);
    }
    scan.finish().ok()?;
    Some(out)
}

fn coding_of(wrap: &str) -> (Coding, Wrap) {
    match wrap {
        "gzip" => (Coding::Gzip, Wrap::Gzip),
        _ => (Coding::Deflate, Wrap::Deflate),
    }
}

/// A body: one or more members (gzip) of compressed pages, maybe with bytes after them.
fn body() -> impl Strategy<Value = (String, Vec<u8>, Vec<u8>)> {
    let wraps = prop_oneof![Just("gzip"), Just("zlib"), Just("raw")];
    let page = (any::<u64>(), prop_oneof![0usize..300, 300usize..20_000, 20_000usize..150_000]);
    let stream = (page, 0u32..=9, prop::collection::vec(0usize..150_000, 0..6), any::<u64>());
    (wraps, prop::collection::vec(stream, 1..3), prop_oneof![Just(vec![]), prop::collection::vec(any::<u8>(), 1..40)])
        .prop_map(|(wrap, streams, after)| {
            let mut page = Vec::new();
            let mut body = Vec::new();
            // Only gzip has members; zlib and raw streams end the body.
            let streams = if wrap == "gzip" { &streams[..] } else { &streams[..1] };
            for ((seed, len), level, mut flushes, kinds) in streams.iter().cloned() {
                flushes.sort_unstable();
                let data = page_like(seed, len);
                body.extend_from_slice(&compress(&data, level, &flushes, kinds, wrap));
                page.extend_from_slice(&data);
            }
            body.extend_from_slice(&after);
            (wrap.to_owned(), page, body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn valid_bodies_decode_as_zlib_decodes_them(
        (wrap, page, body) in body(),
        chunks in prop::collection::vec(1usize..5000, 1..8),
    ) {
        let (coding, scan) = coding_of(&wrap);
        let zlib = decoded_by_zlib(coding, &body);
        let ours = decoded_by_scan(scan, &body, &chunks);
        prop_assert_eq!(&ours, &zlib);
        // Garbage after the end aside (zlib ignores it unless it looks like a member).
        if zlib.is_some() {
            prop_assert!(ours.as_deref().is_some_and(|o| o.starts_with(&page)));
        }
    }

    #[test]
    fn cut_and_corrupt_bodies_fail_as_zlib_fails(
        (wrap, _page, body) in body(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        chunks in prop::collection::vec(1usize..3000, 1..6),
    ) {
        let mut body = body;
        for (at, byte) in edits {
            let at = at.index(body.len());
            body[at] ^= byte;
        }
        let keep = if body.len() > 1 && cut.index(4) == 0 { cut.index(body.len()) } else { body.len() };
        body.truncate(keep);
        let (coding, scan) = coding_of(&wrap);
        prop_assert_eq!(decoded_by_scan(scan, &body, &chunks), decoded_by_zlib(coding, &body));
    }
}

#[test]
fn every_kind_of_block_decodes() {
    let page = page_like(7, 100_000);
    // Level 0: stored blocks; flushes: empty stored blocks, small fixed-code blocks.
    for level in [0, 1, 6, 9] {
        let body = compress(&page, level, &[10, 11, 500, 501, 70_000], 0b10101, "gzip");
        assert_eq!(decoded_by_scan(Wrap::Gzip, &body, &[1, 2, 3, 700]).as_deref(), Some(&page[..]), "level {level}");
    }
}

#[test]
fn a_decompression_bomb_comes_out_in_bounded_steps() {
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&zeros).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < zeros.len() / 500);
    assert_eq!(decoded_by_scan(Wrap::Gzip, &bomb, &[bomb.len()]).map(|d| d.len()), Some(zeros.len()));
}

#[test]
fn a_gzip_header_with_every_field_is_read_and_checked() {
    let page = page_like(3, 5000);
    let deflated = compress(&page, 6, &[], 0, "raw");
    let mut header = vec![0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 1, 2, 3, 4, 0, 3];
    header.extend_from_slice(&[5, 0, b'x', b'y', b'z', b'z', b'y']);
    header.extend_from_slice(b"page.html\0a comment\0");
    let crc = zlib_rs::crc32::crc32(0, &header) as u16;
    header.extend_from_slice(&crc.to_le_bytes());
    let body =
        [&header[..], &deflated, &zlib_rs::crc32::crc32(0, &page).to_le_bytes(), &(page.len() as u32).to_le_bytes()]
            .concat();
    assert_eq!(decoded_by_zlib(Coding::Gzip, &body).as_deref(), Some(&page[..]));
    assert_eq!(decoded_by_scan(Wrap::Gzip, &body, &[1]).as_deref(), Some(&page[..]));
    let mut bad = body.clone();
    bad[header.len() - 1] ^= 1;
    assert_eq!(decoded_by_zlib(Coding::Gzip, &bad), None, "zlib checks the header CRC");
    assert_eq!(decoded_by_scan(Wrap::Gzip, &bad, &[1]), None);
}
