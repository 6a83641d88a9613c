//! A few bytes of state must not make the reader allocate gigabytes: the
//! largest single allocation while reading small hostile inputs is
//! recorded by a counting allocator (this test binary's own).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use excam_codec::wire::{
    decode_state, decode_state_for, encode_state, frame as framed, Compression, StateError,
};
use excam_codec::DecoderState;

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The tests share the counter: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The largest allocation `f` made.
fn largest_allocation(f: impl FnOnce()) -> usize {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    LARGEST.store(0, Ordering::SeqCst);
    f();
    LARGEST.load(Ordering::SeqCst)
}

const LIMIT: usize = 16 << 20;

/// A real 33x31 state: the project's odd-size vector after two frames.
fn small_state() -> DecoderState {
    let mut s = DecoderState::default();
    for f in excam_codec::container::ivf::IvfReader::new(
        std::fs::File::open(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../test-vectors/excam-size-33x31.ivf"),
        )
        .unwrap(),
    )
    .unwrap()
    .take(2)
    {
        s = excam_codec::decode(&s, &f.unwrap().data).unwrap().0;
    }
    s
}

#[test]
fn a_tiny_lz4_payload_cannot_claim_a_huge_body() {
    let input = framed(1, 1 << 30, &[0u8; 32]);
    let mut r = None;
    let largest = largest_allocation(|| r = Some(decode_state(&input)));
    assert!(matches!(r, Some(Err(StateError::Corrupt(_)))), "{r:?}");
    assert!(largest < LIMIT, "allocated {largest} bytes for 60 of input");
}

#[test]
fn a_body_cannot_claim_pictures_it_does_not_hold() {
    // A real one-picture state, its size rewritten to 16383x16383: the
    // pictures it claims would be 400 MB each.
    let s = small_state();
    let mut body = encode_state(&s, Compression::None)[28..].to_vec();
    body[0..2].copy_from_slice(&16383u16.to_le_bytes());
    body[2..4].copy_from_slice(&16383u16.to_le_bytes());
    // Drop the segment map (its length would no longer match the size):
    // it follows the size (6 bytes), the probabilities (1,056 + 4 + 3 + 38)
    // and the segment and filter settings (17).
    let at = 6 + 1056 + 4 + 3 + 38 + 17;
    let map_len = u32::from_le_bytes(body[at..at + 4].try_into().unwrap()) as usize;
    body.splice(at..at + 4 + map_len, [0u8; 4]);
    for (method, payload) in [(0, body.clone()), (1, lz4_flex::block::compress(&body))] {
        let input = framed(method, body.len() as u64, &payload);
        let mut r = None;
        let largest = largest_allocation(|| r = Some(decode_state(&input)));
        assert!(r.as_ref().is_some_and(|r| r.is_err()), "{r:?}");
        assert!(largest < LIMIT, "allocated {largest} bytes");
    }
}

#[test]
fn a_reader_that_knows_the_frame_size_allocates_only_for_it() {
    // 2 MB of LZ4 payload may claim a 256 MB body: within LZ4's ratio and
    // the largest VP8 frame, so the size-blind reader allocates it all.
    let input = framed(1, 1 << 28, &vec![0x5au8; 2 << 20]);
    let mut r = None;
    let blind = largest_allocation(|| r = Some(decode_state(&input)));
    assert!(r.as_ref().is_some_and(|r| r.is_err()), "{r:?}");
    assert!(blind >= 1 << 28, "size-blind reader allocated only {blind}");
    let mut r = None;
    let sized = largest_allocation(|| r = Some(decode_state_for(&input, 640, 480)));
    assert!(matches!(r, Some(Err(StateError::Invalid(_)))), "{r:?}");
    assert!(
        sized < LIMIT,
        "allocated {sized} bytes for a 640x480 reader"
    );
}

#[test]
fn a_sized_reader_takes_its_own_size_and_refuses_another() {
    let s = small_state();
    for c in [Compression::None, Compression::Lz4] {
        let bytes = encode_state(&s, c);
        assert_eq!(decode_state_for(&bytes, 33, 31).unwrap(), s);
        assert!(matches!(
            decode_state_for(&bytes, 48, 48),
            Err(StateError::WrongSize {
                found: (33, 31),
                expected: (48, 48)
            })
        ));
        // Smaller than the state's pictures: refused by length alone.
        assert!(matches!(
            decode_state_for(&bytes, 16, 16),
            Err(StateError::Invalid(_))
        ));
    }
    let empty = encode_state(&DecoderState::default(), Compression::Lz4);
    assert!(decode_state_for(&empty, 33, 31).is_ok());
}
