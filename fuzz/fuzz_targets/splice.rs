//! The gzip/deflate splice fed random input, two ways. Random compressed bytes (corrupt,
//! truncated, hostile): an error or a page, never a panic, and what it decodes is what
//! flate2 decodes. A random page compressed by flate2 at a random level, read in random
//! steps, with a piece inserted at a random place and flushes at random points: the client's
//! body decodes (by flate2) to exactly the page with the piece inserted.
#![no_main]

use std::collections::VecDeque;
use std::io::{Read, Write};

use bytes::Bytes;
use invent_proxy::codec::{Coding, transcode};
use invent_rewrite::{Decode, Encode, Transcode};
use libfuzzer_sys::fuzz_target;

const INSERTED: &[u8] = b"<invent-assistant assistant-id=\"ast_fuzz\"></invent-assistant>";

/// The first bytes of the input choose: the coding, the mode, the step, the level, where
/// the piece goes, and where to flush.
struct Plan {
    coding: Coding,
    random_bytes: bool,
    step: usize,
    level: u32,
    insert_at: usize,
    flush_every: usize,
}

fn plan(head: &[u8; 6]) -> Plan {
    Plan {
        coding: if head[0] & 1 == 0 { Coding::Gzip } else { Coding::Deflate },
        random_bytes: head[0] & 2 != 0,
        step: usize::from(head[1]) * 7 + 1,
        level: u32::from(head[2] % 10),
        insert_at: usize::from(u16::from_le_bytes([head[3], head[4]])),
        flush_every: usize::from(head[5]) + 1,
    }
}

fn compress(coding: Coding, level: u32, page: &[u8]) -> Vec<u8> {
    let level = flate2::Compression::new(level);
    match coding {
        Coding::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(page).expect("in memory");
            encoder.finish().expect("in memory")
        }
        _ => {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
            encoder.write_all(page).expect("in memory");
            encoder.finish().expect("in memory")
        }
    }
}

fn decompress(coding: Coding, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        Coding::Gzip => flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out),
        _ => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
    }
    .expect("the spliced body decodes");
    out
}

/// Runs `compressed` through the splice: the decoded page, and the body the client gets
/// with [`INSERTED`] at `insert_at` of the decoded page. `None` when the splice refuses
/// the input.
fn splice(plan: &Plan, compressed: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let Ok(Transcode::Recode(mut codec)) = transcode(plan.coding, true) else { panic!("gzip and deflate recode") };
    let (mut decoded, mut body, mut out) = (Vec::new(), Vec::new(), VecDeque::new());
    let mut inserted = false;
    let mut rest = compressed;
    let mut steps = 0usize;
    loop {
        let (taken, bytes) = codec.step(&rest[..rest.len().min(plan.step)]).ok()?;
        if taken == 0 && bytes.is_empty() {
            if !rest.is_empty() {
                return None; // no progress with input left: the decoder must say why
            }
            break;
        }
        rest = &rest[taken..];
        let mut pieces = Vec::new();
        let before = decoded.len();
        decoded.extend_from_slice(&bytes);
        if !inserted && plan.insert_at < decoded.len() {
            let at = plan.insert_at.saturating_sub(before);
            pieces.push(bytes.slice(..at));
            pieces.push(Bytes::from_static(INSERTED));
            pieces.push(bytes.slice(at..));
            inserted = true;
        } else {
            pieces.push(bytes);
        }
        codec.push(pieces, &mut out).ok()?;
        steps += 1;
        if steps % plan.flush_every == 0 {
            codec.flush(&mut out).ok()?;
        }
    }
    Decode::finish(&mut *codec).ok()?;
    let last = if inserted { Vec::new() } else { vec![Bytes::from_static(INSERTED)] };
    Encode::finish(&mut *codec, last, &mut out).ok()?;
    out.iter().for_each(|piece| body.extend_from_slice(piece));
    Some((decoded, body))
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<6>() else { return };
    let plan = plan(head);
    let compressed = if plan.random_bytes { rest.to_vec() } else { compress(plan.coding, plan.level, rest) };
    let Some((decoded, body)) = splice(&plan, &compressed) else {
        assert!(plan.random_bytes, "the splice refused flate2's own output");
        return;
    };
    if !plan.random_bytes {
        assert_eq!(decoded, rest, "the splice decodes what flate2 encoded");
    }
    let at = plan.insert_at.min(decoded.len());
    let expected = [&decoded[..at], INSERTED, &decoded[at..]].concat();
    assert_eq!(decompress(plan.coding, &body), expected, "the client's body is the page with the piece inserted");
});
