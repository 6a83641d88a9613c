//! Property tests over the frame parser: valid frames round-trip, every
//! prefix of one is "incomplete" rather than an error or a wrong parse, and
//! arbitrary bytes never panic.

use std::time::Duration;

use excam_rendezvous::proto::{
    decode_frame, FrameHeader, Message, ProtoError, Request, Response, Status, HEADER_LEN, MAX_META,
};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    // Printable text, including multi-byte characters, 1..=60 chars (at most
    // 240 bytes, under the 255-byte limit).
    proptest::string::string_regex("[a-zA-Z0-9/_.é漢-]{1,60}").unwrap()
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (name(), "[0-9a-f]{64}").prop_map(|(job, token)| Request::Hello { job, token }),
        (name(), any::<u32>()).prop_map(|(mailbox, ms)| Request::Put {
            mailbox,
            timeout: Duration::from_millis(ms.into()),
        }),
        (name(), any::<u32>()).prop_map(|(mailbox, ms)| Request::Get {
            mailbox,
            timeout: Duration::from_millis(ms.into()),
        }),
        Just(Request::EndJob),
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Ok),
        Just(Status::Evicted),
        Just(Status::Timeout),
        Just(Status::Conflict),
        Just(Status::TooLarge),
        Just(Status::RelayFull),
        Just(Status::JobEnded),
        Just(Status::LimitReached),
        Just(Status::BadRequest),
        Just(Status::ShuttingDown),
        Just(Status::Continue),
    ]
}

/// A frame's bytes, its expected message and payload.
fn frame() -> impl Strategy<Value = (Vec<u8>, Message, Vec<u8>)> {
    let req = (request(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(r, p)| {
        let payload = if matches!(r, Request::Put { .. }) {
            p
        } else {
            Vec::new()
        };
        let mut bytes = r.encode(payload.len() as u64);
        bytes.extend_from_slice(&payload);
        (bytes, Message::Request(r), payload)
    });
    let resp = (
        status(),
        "[ -~]{0,80}",
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(status, message, p)| {
            let payload = if status == Status::Ok { p } else { Vec::new() };
            let r = Response { status, message };
            let mut bytes = r.encode(payload.len() as u64);
            bytes.extend_from_slice(&payload);
            (bytes, Message::Response(r), payload)
        });
    prop_oneof![req, resp]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn valid_frames_round_trip((bytes, msg, payload) in frame(), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut buf = bytes.clone();
        buf.extend_from_slice(&tail);
        let d = decode_frame(&buf, 1 << 20).unwrap().expect("complete frame");
        prop_assert_eq!(d.message, msg);
        prop_assert_eq!(d.payload, &payload[..]);
        prop_assert_eq!(d.used, bytes.len());
    }

    #[test]
    fn prefixes_are_incomplete_not_wrong((bytes, _msg, _p) in frame(), cut in any::<prop::sample::Index>()) {
        let n = cut.index(bytes.len());
        prop_assert_eq!(decode_frame(&bytes[..n], 1 << 20), Ok(None));
    }

    #[test]
    fn payload_limit_is_enforced_from_the_header(
        mailbox in name(),
        len in 1u64..u64::MAX,
        under in 1u64..=u64::MAX,
    ) {
        let limit = len.saturating_sub(under);
        let bytes = Request::Put { mailbox, timeout: Duration::ZERO }.encode(len);
        // Only the header is offered: the refusal must not need the body.
        let r = decode_frame(&bytes[..HEADER_LEN], limit);
        let refused = matches!(r, Err(ProtoError::PayloadTooLarge { .. }));
        prop_assert!(refused);
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600), limit in any::<u64>()) {
        let _ = decode_frame(&buf, limit);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        kind in prop::sample::select(vec![1u8, 2, 3, 4, 0x80]),
        meta in proptest::collection::vec(any::<u8>(), 0..300),
        payload_len in 0u64..64,
    ) {
        let mut buf = b"EXRL\x01".to_vec();
        buf.push(kind);
        buf.extend_from_slice(&(meta.len() as u16).to_be_bytes());
        buf.extend_from_slice(&payload_len.to_be_bytes());
        buf.extend_from_slice(&meta);
        buf.resize(buf.len() + payload_len as usize, 0);
        if let Ok(Some(d)) = decode_frame(&buf, 1 << 20) {
            prop_assert_eq!(d.used, buf.len());
            prop_assert_eq!(d.payload.len() as u64, payload_len);
            // Whatever parses is canonical: it re-encodes to the same bytes.
            let head = match &d.message {
                Message::Request(r) => r.encode(payload_len),
                Message::Response(r) => r.encode(payload_len),
            };
            prop_assert_eq!(&head[..], &buf[..d.used - d.payload.len()]);
        }
    }

    #[test]
    fn header_check_agrees_with_encode(meta_len in 0u16..=(MAX_META as u16), payload_len in any::<u64>()) {
        let h = FrameHeader { kind: excam_rendezvous::proto::Kind::Put, meta_len, payload_len };
        prop_assert_eq!(FrameHeader::check(&h.encode(), u64::MAX), Ok(h));
    }
}
