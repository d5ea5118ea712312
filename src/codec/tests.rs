//! The decoders and the encoders that encode again (brotli, zstd): round trips in any
//! chunking, flushes that make what came decodable, bounded steps, cut and corrupt input.

use std::io::{self, Write};

use super::decode::Decoder;
use super::encode::Encoder;
use super::{Coding, DECODE_STEP};

const PAGE: &[u8] = b"<!DOCTYPE html><html><body><p>Hello, compressed world! \xc3\xa9</p></body></html>";

/// `data` compressed in `coding` by the libraries' own writers, in one go.
fn encode(coding: Coding, data: &[u8]) -> Vec<u8> {
    let flate = flate2::Compression::default();
    match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Coding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Coding::Brotli | Coding::Zstd => {
            let mut encoder = Encoder::new(coding).unwrap();
            let mut out = encoder.push(data).unwrap().to_vec();
            out.extend_from_slice(&encoder.finish().unwrap());
            out
        }
    }
}

/// Decodes `encoded` fed in `chunk`-byte pieces, step by step, as the body does.
fn decode_all(coding: Coding, encoded: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
    let mut decoder = Decoder::new(coding)?;
    let mut decoded = Vec::new();
    for piece in encoded.chunks(chunk) {
        let mut rest = piece;
        loop {
            let (used, out) = decoder.step(rest)?;
            assert!(out.len() <= DECODE_STEP);
            decoded.extend_from_slice(&out);
            rest = &rest[used..];
            if rest.is_empty() && out.is_empty() {
                break;
            }
        }
    }
    loop {
        let (_, out) = decoder.step(&[])?;
        if out.is_empty() {
            break;
        }
        decoded.extend_from_slice(&out);
    }
    decoder.finish()?;
    Ok(decoded)
}

#[test]
fn every_coding_round_trips_in_any_chunking() {
    for coding in [Coding::Brotli, Coding::Zstd] {
        for chunk in [1, 7, PAGE.len()] {
            let mut encoder = Encoder::new(coding).unwrap();
            let mut encoded = Vec::new();
            for piece in PAGE.chunks(chunk) {
                encoded.extend_from_slice(&encoder.push(piece).unwrap());
            }
            encoded.extend_from_slice(&encoder.push(b"<!-- end -->").unwrap());
            encoded.extend_from_slice(&encoder.finish().unwrap());
            let decoded = decode_all(coding, &encoded, 3).unwrap();
            assert_eq!(decoded, [PAGE, b"<!-- end -->"].concat(), "{coding:?} by {chunk}");
        }
    }
    for coding in [Coding::Gzip, Coding::Deflate] {
        assert_eq!(decode_all(coding, &encode(coding, PAGE), 3).unwrap(), PAGE, "{coding:?}");
    }
}

#[test]
fn a_flush_makes_what_was_pushed_decodable_and_only_a_flush_does() {
    for coding in [Coding::Brotli, Coding::Zstd] {
        let mut encoder = Encoder::new(coding).unwrap();
        let mut decoder = Decoder::new(coding).unwrap();
        let mut sent = encoder.push(b"<!DOCTYPE html><h1>first</h1>").unwrap().to_vec();
        for _ in 0..20 {
            sent.extend_from_slice(&encoder.push(b"<p>a small piece</p>").unwrap());
        }
        let unflushed = sent.len();
        sent.extend_from_slice(&encoder.flush().unwrap());
        assert!(encoder.flush().unwrap().is_empty(), "{coding:?}: nothing new, nothing to flush");
        let (_, decoded) = decoder.step(&sent).unwrap();
        let (_, more) = decoder.step(&[]).unwrap();
        let decoded = [&decoded[..], &more[..]].concat();
        assert!(decoded.starts_with(b"<!DOCTYPE html><h1>first</h1><p>a small piece</p>"), "{coding:?}");
        assert_eq!(decoded.len(), 29 + 20 * 20, "{coding:?}: all of it");
        assert!(unflushed < 29 + 20 * 20, "{coding:?}: small pieces are not sent one by one");
    }
}

#[test]
fn gzip_and_deflate_are_spliced_not_encoded_again() {
    assert!(Encoder::new(Coding::Gzip).is_err());
    assert!(Encoder::new(Coding::Deflate).is_err());
}

#[test]
fn raw_deflate_is_read_too() {
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    raw.write_all(PAGE).unwrap();
    let raw = raw.finish().unwrap();
    assert_eq!(decode_all(Coding::Deflate, &raw, 5).unwrap(), PAGE);
}

#[test]
fn corrupt_and_truncated_input_are_errors() {
    assert!(decode_all(Coding::Gzip, b"\x1f\x8b\x08\x00garbage that is not deflate at all........", 64).is_err());
    for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
        let encoded = encode(coding, PAGE);
        let cut = &encoded[..encoded.len() - 3];
        assert!(decode_all(coding, cut, 7).is_err(), "{coding:?}: a cut stream must not look complete");
    }
}

#[test]
fn concatenated_gzip_members_are_one_body() {
    let body = [encode(Coding::Gzip, b"<p>one</p>"), encode(Coding::Gzip, b"<p>two</p>")].concat();
    assert_eq!(decode_all(Coding::Gzip, &body, 4).unwrap(), b"<p>one</p><p>two</p>");
}

#[test]
fn a_decompression_bomb_comes_out_in_bounded_steps() {
    let zeros = vec![0u8; 8 * 1024 * 1024];
    for coding in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
        let bomb = encode(coding, &zeros);
        assert!(bomb.len() < zeros.len() / 100, "{coding:?}");
        assert_eq!(decode_all(coding, &bomb, bomb.len()).unwrap().len(), zeros.len(), "{coding:?}");
    }
}
