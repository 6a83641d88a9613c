//! The `extern "C"` functions. The only module with `unsafe`: C hands us
//! raw pointers, and each dereference is checked for null and sized by
//! the caller's lengths first. Every entry point runs inside
//! `catch_unwind`, so no panic crosses into C.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use excam_codec::{Image, Plane};

use crate::{DecoderCore, EncoderCore, Packet, Settings};

/// Success.
pub const EXCAM_OK: c_int = 0;
/// Failure; `excam_last_error()` says why.
pub const EXCAM_ERROR: c_int = -1;
/// No packet or picture available yet (not an error).
pub const EXCAM_AGAIN: c_int = 1;
/// The encoder was flushed and every packet was taken.
pub const EXCAM_EOF: c_int = 2;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs `f`, turning an `Err` or a panic into `fail` and a message.
fn guard<T>(fail: T, f: impl FnOnce() -> Result<T, String>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(m)) => {
            set_error(&m);
            fail
        }
        Err(_) => {
            set_error("internal error (panic) in excam");
            fail
        }
    }
}

/// Encoder configuration. Fill it with `excam_config_default` first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExcamConfig {
    /// Luma width in pixels.
    pub width: u32,
    /// Luma height in pixels.
    pub height: u32,
    /// Frame rate numerator (frames per second = fps_num / fps_den).
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Quantizer 0..63 (lower is better quality).
    pub quantizer: u32,
    /// Target bitrate in kbit/s; 0 = constant quantizer. Non-zero is
    /// rejected: the codec has no rate control yet.
    pub bitrate_kbps: u32,
    /// Key frame interval in frames; 0 = only the first frame.
    pub keyint: u32,
    /// Speed 0..8 (higher is faster).
    pub speed: u32,
}

/// One compressed frame. From `excam_encoder_receive_packet`, `data` is
/// the encoder's and stays valid until the next call on that encoder (or
/// `excam_encoder_free`); from `excam_encode_parallel` it lives until
/// `excam_packets_free`.
#[repr(C)]
#[derive(Debug)]
pub struct ExcamPacket {
    /// VP8 frame bytes.
    pub data: *const u8,
    /// Number of bytes at `data`.
    pub size: usize,
    /// Frame index.
    pub pts: u64,
    /// 1 for a key frame.
    pub key: c_int,
}

/// A decoded picture (I420). Planes are owned by the decoder and valid
/// until the next call on it.
#[repr(C)]
#[derive(Debug)]
pub struct ExcamPicture {
    /// Luma width.
    pub width: u32,
    /// Luma height.
    pub height: u32,
    /// Y, U, V plane pointers.
    pub planes: [*const u8; 3],
    /// Y, U, V strides in bytes.
    pub strides: [usize; 3],
}

/// Opaque encoder.
pub struct ExcamEncoder {
    core: EncoderCore,
    current: Option<Packet>,
}

/// Opaque decoder.
pub struct ExcamDecoder {
    core: DecoderCore,
}

fn settings(cfg: &ExcamConfig) -> Result<Settings, String> {
    if cfg.bitrate_kbps != 0 {
        return Err(
            "target bitrate is not supported yet: set bitrate_kbps = 0 and use quantizer".into(),
        );
    }
    if cfg.fps_num == 0 || cfg.fps_den == 0 {
        return Err("fps_num and fps_den must be non-zero".into());
    }
    let s = Settings {
        width: cfg.width as usize,
        height: cfg.height as usize,
        quantizer: cfg.quantizer.min(255) as u8,
        keyint: cfg.keyint,
        speed: cfg.speed.min(255) as u8,
    };
    if cfg.quantizer > 63 || cfg.speed > 8 {
        return Err(format!(
            "quantizer {} (0..63) or speed {} (0..8) out of range",
            cfg.quantizer, cfg.speed
        ));
    }
    s.validate()?;
    Ok(s)
}

/// Copies one plane out of caller memory.
///
/// # Safety
/// `p` must point to `stride * (h - 1) + w` readable bytes (checked for
/// null and `stride >= w` here).
unsafe fn read_plane(p: *const u8, stride: usize, w: usize, h: usize) -> Result<Plane, String> {
    if p.is_null() {
        return Err("plane pointer is NULL".into());
    }
    if stride < w {
        return Err(format!("stride {stride} smaller than width {w}"));
    }
    let mut out = Plane::filled(w, h, 0);
    for y in 0..h {
        // SAFETY: the caller promises stride*(h-1)+w readable bytes at p;
        // row y spans [y*stride, y*stride+w) inside that.
        let row = unsafe { std::slice::from_raw_parts(p.add(y * stride), w) };
        out.row_mut(y).copy_from_slice(row);
    }
    Ok(out)
}

/// # Safety
/// `planes` and `strides` must point to 3 elements each; each plane as in
/// [`read_plane`].
unsafe fn read_frame(
    w: usize,
    h: usize,
    planes: *const *const u8,
    strides: *const usize,
) -> Result<Image, String> {
    if planes.is_null() || strides.is_null() {
        return Err("planes or strides is NULL".into());
    }
    // SAFETY: both arrays have 3 elements per the API contract; non-null checked.
    let (pl, st) = unsafe {
        (
            std::slice::from_raw_parts(planes, 3),
            std::slice::from_raw_parts(strides, 3),
        )
    };
    let (cw, ch) = excam_codec::image::chroma_size(w, h);
    // SAFETY: plane sizes are the caller's contract, forwarded.
    let y = unsafe { read_plane(pl[0], st[0], w, h)? };
    // SAFETY: as above.
    let u = unsafe { read_plane(pl[1], st[1], cw, ch)? };
    // SAFETY: as above.
    let v = unsafe { read_plane(pl[2], st[2], cw, ch)? };
    Ok(Image {
        width: w,
        height: h,
        planes: [y, u, v],
    })
}

/// The message of the last failed call on this thread ("" if none). Valid
/// until the next excam call on this thread.
#[no_mangle]
pub extern "C" fn excam_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Library version, e.g. "0.1.0". Static storage.
#[no_mangle]
pub extern "C" fn excam_version() -> *const c_char {
    crate::VERSION.as_ptr().cast()
}

/// Fills `cfg` with defaults (fps 30/1, quantizer 20, keyint 0, speed 4)
/// for a `width` x `height` picture.
///
/// # Safety
/// `cfg` must be NULL or point to a writable `ExcamConfig`.
#[no_mangle]
pub unsafe extern "C" fn excam_config_default(
    cfg: *mut ExcamConfig,
    width: u32,
    height: u32,
) -> c_int {
    guard(EXCAM_ERROR, || {
        if cfg.is_null() {
            return Err("cfg is NULL".into());
        }
        let c = ExcamConfig {
            width,
            height,
            fps_num: 30,
            fps_den: 1,
            quantizer: 20,
            bitrate_kbps: 0,
            keyint: 0,
            speed: 4,
        };
        // SAFETY: non-null, and the caller promises it is writable.
        unsafe { cfg.write(c) };
        Ok(EXCAM_OK)
    })
}

/// A new encoder, or NULL (see `excam_last_error`).
///
/// # Safety
/// `cfg` must be NULL or point to a readable `ExcamConfig`.
#[no_mangle]
pub unsafe extern "C" fn excam_encoder_new(cfg: *const ExcamConfig) -> *mut ExcamEncoder {
    guard(ptr::null_mut(), || {
        // SAFETY: null checked by as_ref; readable per contract.
        let cfg = unsafe { cfg.as_ref() }.ok_or("cfg is NULL")?;
        let core = EncoderCore::new(settings(cfg)?)?;
        Ok(Box::into_raw(Box::new(ExcamEncoder {
            core,
            current: None,
        })))
    })
}

/// Encodes one I420 frame (`planes`/`strides`: 3 each, Y U V; chroma
/// (w+1)/2 x (h+1)/2). `planes == NULL` flushes.
///
/// # Safety
/// `enc` from `excam_encoder_new`; planes as described.
#[no_mangle]
pub unsafe extern "C" fn excam_encoder_send_frame(
    enc: *mut ExcamEncoder,
    planes: *const *const u8,
    strides: *const usize,
) -> c_int {
    guard(EXCAM_ERROR, || {
        // SAFETY: a live encoder handle or NULL per contract.
        let e = unsafe { enc.as_mut() }.ok_or("encoder is NULL")?;
        if planes.is_null() {
            e.core.flush();
            return Ok(EXCAM_OK);
        }
        let (w, h) = (e.core.settings.width, e.core.settings.height);
        // SAFETY: the caller's plane contract, forwarded.
        let f = unsafe { read_frame(w, h, planes, strides)? };
        e.core.send(&f)?;
        Ok(EXCAM_OK)
    })
}

/// Takes the next packet: EXCAM_OK and fills `pkt`, EXCAM_AGAIN if none is
/// ready (send more frames), EXCAM_EOF after flush when all are taken.
/// The packet's memory is the encoder's, valid until the next call on it.
///
/// # Safety
/// `enc` from `excam_encoder_new`; `pkt` writable.
#[no_mangle]
pub unsafe extern "C" fn excam_encoder_receive_packet(
    enc: *mut ExcamEncoder,
    pkt: *mut ExcamPacket,
) -> c_int {
    guard(EXCAM_ERROR, || {
        // SAFETY: a live encoder handle or NULL per contract.
        let e = unsafe { enc.as_mut() }.ok_or("encoder is NULL")?;
        if pkt.is_null() {
            return Err("pkt is NULL".into());
        }
        e.current = e.core.receive();
        let Some(p) = e.current.as_ref() else {
            return Ok(if e.core.finished() {
                EXCAM_EOF
            } else {
                EXCAM_AGAIN
            });
        };
        let out = ExcamPacket {
            data: p.data.as_ptr(),
            size: p.data.len(),
            pts: p.pts,
            key: p.key as c_int,
        };
        // SAFETY: non-null checked, writable per contract.
        unsafe { pkt.write(out) };
        Ok(EXCAM_OK)
    })
}

/// Frees an encoder (NULL is fine).
///
/// # Safety
/// `enc` from `excam_encoder_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn excam_encoder_free(enc: *mut ExcamEncoder) {
    guard((), || {
        if !enc.is_null() {
            // SAFETY: created by Box::into_raw in excam_encoder_new, freed once.
            drop(unsafe { Box::from_raw(enc) });
        }
        Ok(())
    })
}

/// A new decoder.
#[no_mangle]
pub extern "C" fn excam_decoder_new() -> *mut ExcamDecoder {
    guard(ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(ExcamDecoder {
            core: DecoderCore::default(),
        })))
    })
}

/// Decodes one VP8 frame: EXCAM_OK if it is shown (fetch it with
/// `excam_decoder_get_picture`), EXCAM_AGAIN if it is not, EXCAM_ERROR on
/// a corrupt frame.
///
/// # Safety
/// `dec` from `excam_decoder_new`; `data` points to `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn excam_decoder_decode(
    dec: *mut ExcamDecoder,
    data: *const u8,
    size: usize,
) -> c_int {
    guard(EXCAM_ERROR, || {
        // SAFETY: a live decoder handle or NULL per contract.
        let d = unsafe { dec.as_mut() }.ok_or("decoder is NULL")?;
        if data.is_null() || size == 0 {
            return Err("data is NULL or size is 0".into());
        }
        // SAFETY: non-null; the caller promises size readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(data, size) };
        Ok(if d.core.decode(bytes)? {
            EXCAM_OK
        } else {
            EXCAM_AGAIN
        })
    })
}

/// The last shown picture: EXCAM_OK, or EXCAM_AGAIN if none yet.
///
/// # Safety
/// `dec` from `excam_decoder_new`; `pic` writable.
#[no_mangle]
pub unsafe extern "C" fn excam_decoder_get_picture(
    dec: *const ExcamDecoder,
    pic: *mut ExcamPicture,
) -> c_int {
    guard(EXCAM_ERROR, || {
        // SAFETY: a live decoder handle or NULL per contract.
        let d = unsafe { dec.as_ref() }.ok_or("decoder is NULL")?;
        if pic.is_null() {
            return Err("pic is NULL".into());
        }
        let Some(f) = d.core.shown.as_ref() else {
            return Ok(EXCAM_AGAIN);
        };
        let p = &f.planes;
        let out = ExcamPicture {
            width: f.width as u32,
            height: f.height as u32,
            planes: [p[0].data.as_ptr(), p[1].data.as_ptr(), p[2].data.as_ptr()],
            strides: [p[0].stride, p[1].stride, p[2].stride],
        };
        // SAFETY: non-null checked, writable per contract.
        unsafe { pic.write(out) };
        Ok(EXCAM_OK)
    })
}

/// Frees a decoder (NULL is fine).
///
/// # Safety
/// `dec` from `excam_decoder_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn excam_decoder_free(dec: *mut ExcamDecoder) {
    guard((), || {
        if !dec.is_null() {
            // SAFETY: created by Box::into_raw in excam_decoder_new, freed once.
            drop(unsafe { Box::from_raw(dec) });
        }
        Ok(())
    })
}

/// Result of `excam_encode_parallel`: `count` packets. Free with
/// `excam_packets_free`.
#[repr(C)]
#[derive(Debug)]
pub struct ExcamPackets {
    /// Array of `count` packets.
    pub packets: *mut ExcamPacket,
    /// Number of packets.
    pub count: usize,
}

/// ExCamera[chunk, threads] encode of `count` tightly packed I420 frames
/// (each `width*height + 2*((w+1)/2)*((h+1)/2)` bytes, consecutive at
/// `i420`). If `ivf_path` is non-NULL an IVF file is written there; if
/// `out` is non-NULL it receives the packets (free with
/// `excam_packets_free`).
///
/// # Safety
/// `cfg` readable; `i420` points to `count` frames; `ivf_path` NULL or a
/// NUL-terminated path; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn excam_encode_parallel(
    cfg: *const ExcamConfig,
    i420: *const u8,
    count: usize,
    chunk: u32,
    threads: u32,
    ivf_path: *const c_char,
    out: *mut ExcamPackets,
) -> c_int {
    guard(EXCAM_ERROR, || {
        // SAFETY: null checked by as_ref; readable per contract.
        let cfg = unsafe { cfg.as_ref() }.ok_or("cfg is NULL")?;
        let s = settings(cfg)?;
        if i420.is_null() || count == 0 {
            return Err("i420 is NULL or count is 0".into());
        }
        let len = excam_codec::image::i420_len(s.width, s.height);
        let total = len.checked_mul(count).ok_or("count too large")?;
        // SAFETY: non-null; the caller promises count frames of len bytes.
        let bytes = unsafe { std::slice::from_raw_parts(i420, total) };
        let frames: Vec<Image> = bytes
            .chunks(len)
            .map(|b| Image::from_i420(s.width, s.height, b).ok_or("bad I420 frame"))
            .collect::<Result<_, _>>()?;
        let packets = crate::encode_parallel(&s, &frames, chunk as usize, threads as usize)?;
        if !ivf_path.is_null() {
            // SAFETY: non-null, NUL-terminated per contract.
            let path = unsafe { CStr::from_ptr(ivf_path) }
                .to_str()
                .map_err(|_| "ivf_path is not UTF-8")?;
            let ivf = crate::ivf_bytes(&s, cfg.fps_num, cfg.fps_den, &packets)?;
            std::fs::write(path, ivf).map_err(|e| format!("writing {path}: {e}"))?;
        }
        if !out.is_null() {
            let v: Vec<ExcamPacket> = packets
                .into_iter()
                .map(|p| {
                    let b = p.data.into_boxed_slice();
                    let size = b.len();
                    ExcamPacket {
                        data: Box::into_raw(b) as *const u8,
                        size,
                        pts: p.pts,
                        key: p.key as c_int,
                    }
                })
                .collect();
            let b = v.into_boxed_slice();
            let r = ExcamPackets {
                count: b.len(),
                packets: Box::into_raw(b) as *mut ExcamPacket,
            };
            // SAFETY: non-null checked, writable per contract.
            unsafe { out.write(r) };
        }
        Ok(EXCAM_OK)
    })
}

/// Frees packets from `excam_encode_parallel` (NULL or empty is fine).
///
/// # Safety
/// `p` NULL or filled by `excam_encode_parallel`, freed once.
#[no_mangle]
pub unsafe extern "C" fn excam_packets_free(p: *mut ExcamPackets) {
    guard((), || {
        // SAFETY: NULL or a live ExcamPackets per contract.
        let Some(p) = (unsafe { p.as_mut() }) else {
            return Ok(());
        };
        if !p.packets.is_null() {
            // SAFETY: built from a boxed slice of `count` in excam_encode_parallel.
            let v = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p.packets, p.count)) };
            for k in v.iter() {
                // SAFETY: each data is a boxed slice of `size` bytes made above.
                drop(unsafe {
                    Box::from_raw(ptr::slice_from_raw_parts_mut(k.data as *mut u8, k.size))
                });
            }
        }
        p.packets = ptr::null_mut();
        p.count = 0;
        Ok(())
    })
}
