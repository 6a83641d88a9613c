//! Semantics, security and bounds of the relay, end to end over loopback QUIC.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, mailbox_cap, TestRelay};
use excam_rendezvous::proto::{
    self, close, FrameHeader, Kind, Request, Response, Status, HEADER_LEN,
};
use excam_rendezvous::tls::client_crypto;
use excam_rendezvous::{ClientError, Fingerprint, RelayClient, ServerAuth, TlsIdentity};
use tokio::time::Instant;

fn bytes(n: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect::<Vec<_>>(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_before_get_and_second_read() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let a = RelayClient::connect(relay.client("job")).await.unwrap();
        let b = RelayClient::connect(relay.client("job")).await.unwrap();
        let data = bytes(100_000, 1);
        a.put("state/17/final", data.clone()).await.unwrap();
        let got = b
            .get("state/17/final", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got, data);
        // A retried or speculative successor reads the same mailbox again.
        let again = a
            .get("state/17/final", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(again, data);
        let s = relay.stats.get();
        assert_eq!(s.mailboxes, 1);
        assert_eq!(s.bytes_held, 100_000);
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_before_put_waits_for_the_put() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let a = Arc::new(RelayClient::connect(relay.client("job")).await.unwrap());
        let b = RelayClient::connect(relay.client("job")).await.unwrap();
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let r = a.get("m", Duration::from_secs(10)).await;
                (r, t.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "get returned before the put");
        b.put("m", Bytes::from_static(b"hello")).await.unwrap();
        let (r, waited) = waiter.await.unwrap();
        assert_eq!(&r.unwrap()[..], b"hello");
        assert!(waited >= Duration::from_millis(300));
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_times_out_when_nobody_puts() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let a = RelayClient::connect(relay.client("job")).await.unwrap();
        let t = Instant::now();
        let r = a.get("never", Duration::from_millis(300)).await;
        assert!(matches!(r, Err(ClientError::Timeout(_))), "{r:?}");
        assert!(t.elapsed() >= Duration::from_millis(300));
        // The awaited-but-never-filled mailbox is not left behind.
        assert_eq!(relay.stats.get().mailboxes, 0);
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_drops_mailboxes() {
    bounded(async {
        let relay = TestRelay::start(|c| c.ttl = Duration::from_millis(200)).await;
        let a = RelayClient::connect(relay.client("job")).await.unwrap();
        a.put("unread", bytes(1000, 2)).await.unwrap();
        a.put("read", bytes(1000, 3)).await.unwrap();
        a.get("read", Duration::from_secs(1)).await.unwrap();
        assert_eq!(relay.stats.get().bytes_held, 2000);
        tokio::time::sleep(Duration::from_millis(450)).await;
        let s = relay.stats.get();
        assert_eq!(s.bytes_held, 0, "{s:?}");
        assert_eq!(s.mailboxes, 0);
        // Both answer Evicted: the reader falls back to the durable store.
        for m in ["unread", "read"] {
            let r = a.get(m, Duration::from_secs(1)).await;
            assert!(matches!(r, Err(ClientError::Evicted(_))), "{m}: {r:?}");
        }
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_on_read_frees_a_mailbox_once_its_reader_has_it() {
    bounded(async {
        let relay = TestRelay::start(|c| c.drop_on_read = true).await;
        let a = RelayClient::connect(relay.client("job")).await.unwrap();
        let b = RelayClient::connect(relay.client("job")).await.unwrap();
        let data = bytes(100_000, 4);
        a.put("state/3/final", data.clone()).await.unwrap();
        a.put("state/4/final", bytes(50_000, 5)).await.unwrap();
        assert_eq!(relay.stats.get().bytes_held, 150_000);
        let got = b
            .get("state/3/final", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got, data);
        // The mailbox goes once the answer is acknowledged, which the
        // reader's get does not wait for.
        let t = Instant::now();
        while relay.stats.get().bytes_held != 50_000 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{:?}",
                relay.stats.get()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let s = relay.stats.get();
        assert_eq!(s.mailboxes, 1, "the unread mailbox stays: {s:?}");
        assert_eq!(s.evictions, 0, "dropped on read, not evicted for room");
        // A retried reader hears Evicted at once and uses the durable copy.
        let t = Instant::now();
        let r = b.get("state/3/final", Duration::from_secs(5)).await;
        assert!(matches!(r, Err(ClientError::Evicted(_))), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
        // A repeated put (a producer's retry) fills it again, for one read.
        a.put("state/3/final", data.clone()).await.unwrap();
        assert_eq!(
            b.get("state/3/final", Duration::from_secs(5))
                .await
                .unwrap(),
            data
        );
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_refused() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let mut cfg = relay.client("job");
        cfg.token = "00".repeat(32);
        let t = Instant::now();
        let r = RelayClient::connect(cfg).await;
        assert!(matches!(r, Err(ClientError::Auth)), "{:?}", r.err());
        // Refused, not retried until the budget runs out.
        assert!(t.elapsed() < Duration::from_secs(5));
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_opens_only_its_own_job() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        // Job A's token presented for job B.
        let mut cfg = relay.client("job-b");
        cfg.token = relay.secret.token("job-a");
        let r = RelayClient::connect(cfg).await;
        assert!(matches!(r, Err(ClientError::Auth)), "{:?}", r.err());
        // Same mailbox name in two jobs: separate mailboxes.
        let a = RelayClient::connect(relay.client("job-a")).await.unwrap();
        let b = RelayClient::connect(relay.client("job-b")).await.unwrap();
        a.put("shared-name", Bytes::from_static(b"from a"))
            .await
            .unwrap();
        let r = b.get("shared-name", Duration::from_millis(300)).await;
        assert!(matches!(r, Err(ClientError::Timeout(_))), "{r:?}");
        b.put("shared-name", Bytes::from_static(b"from b"))
            .await
            .unwrap();
        assert_eq!(
            &a.get("shared-name", Duration::from_secs(1)).await.unwrap()[..],
            b"from a"
        );
        assert_eq!(
            &b.get("shared-name", Duration::from_secs(1)).await.unwrap()[..],
            b"from b"
        );
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_fingerprint_is_refused_by_the_client() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let other = TlsIdentity::self_signed().unwrap().fingerprint();
        let mut cfg = relay.client("job");
        cfg.auth = ServerAuth::Pinned(other);
        let r = RelayClient::connect(cfg).await;
        assert!(matches!(r, Err(ClientError::Tls(_))), "{:?}", r.err());
        assert_eq!(relay.stats.get().jobs, 0);
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_certificate_is_verified_against_roots() {
    bounded(async {
        // A CA and a leaf for "localhost", as --cert/--key would load.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("excam-relay-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem() + &ca.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let identity =
            TlsIdentity::from_pem_files(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
        let relay = TestRelay::start(|c| c.identity = Some(identity)).await;

        let mut cfg = relay.client("job");
        cfg.relay = format!("localhost:{}", relay.addr.port());
        cfg.auth = ServerAuth::ca_file(&dir.join("ca.pem")).unwrap();
        let c = RelayClient::connect(cfg.clone()).await.unwrap();
        c.put("m", Bytes::from_static(b"x")).await.unwrap();

        // Roots without that CA: the chain does not verify.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(dir.join("other.pem"), other.cert.pem()).unwrap();
        cfg.auth = ServerAuth::ca_file(&dir.join("other.pem")).unwrap();
        let r = RelayClient::connect(cfg).await;
        assert!(matches!(r, Err(ClientError::Tls(_))), "{:?}", r.err());
        let _ = std::fs::remove_dir_all(&dir);
        relay.stop().await;
    })
    .await;
}

/// Opens a raw QUIC connection and authenticates, to send hand-made frames.
async fn raw_connection(relay: &TestRelay, job: &str) -> (quinn::Endpoint, quinn::Connection) {
    let crypto = client_crypto(&ServerAuth::Pinned(relay.fingerprint)).unwrap();
    let quic = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap(),
    ));
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = ep
        .connect_with(quic, relay.addr, "excam-relay")
        .unwrap()
        .await
        .unwrap();
    let (mut s, mut r) = conn.open_bi().await.unwrap();
    let hello = Request::Hello {
        job: job.into(),
        token: relay.secret.token(job),
    };
    s.write_all(&hello.encode(0)).await.unwrap();
    s.finish().unwrap();
    let resp = read_raw_response(&mut r).await;
    assert_eq!(resp.status, Status::Ok);
    (ep, conn)
}

async fn read_raw_response(r: &mut quinn::RecvStream) -> Response {
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h).await.unwrap();
    let header = FrameHeader::check(&h, 1 << 30).unwrap();
    let mut meta = vec![0u8; header.meta_len as usize];
    r.read_exact(&mut meta).await.unwrap();
    Response::parse(&header, &meta).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_gib_frame_is_refused_from_its_header() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let (_ep, conn) = raw_connection(&relay, "job").await;
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        let head = Request::Put {
            mailbox: "huge".into(),
            timeout: Duration::from_secs(60),
        }
        .encode(10 << 30);
        // Only the header and metadata: no body is ever sent, and the
        // stream is left open, so an answer proves the relay decided from
        // the header alone.
        s.write_all(&head).await.unwrap();
        let t = Instant::now();
        let resp = tokio::time::timeout(Duration::from_secs(5), read_raw_response(&mut r))
            .await
            .expect("relay did not answer from the header");
        assert_eq!(resp.status, Status::TooLarge, "{}", resp.message);
        assert!(t.elapsed() < Duration::from_secs(2));
        // The relay told us to stop sending the body.
        let stopped = tokio::time::timeout(Duration::from_secs(5), s.stopped())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stopped, Some(quinn::VarInt::from_u32(close::REFUSED)));
        assert_eq!(relay.stats.get().peak_bytes_held, 0);
        // The connection stays usable.
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        s.write_all(&Request::EndJob.encode(0)).await.unwrap();
        s.finish().unwrap();
        assert_eq!(read_raw_response(&mut r).await.status, Status::Ok);
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_bad_request() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let (_ep, conn) = raw_connection(&relay, "job").await;
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut wrong_version = Request::EndJob.encode(0);
        wrong_version[4] = 9;
        frames.push(wrong_version);
        let mut wrong_magic = Request::EndJob.encode(0);
        wrong_magic[0] = b'X';
        frames.push(wrong_magic);
        // Metadata longer than the fields it declares.
        let mut trailing = FrameHeader {
            kind: Kind::EndJob,
            meta_len: 3,
            payload_len: 0,
        }
        .encode()
        .to_vec();
        trailing.extend_from_slice(b"abc");
        frames.push(trailing);
        for f in frames {
            let (mut s, mut r) = conn.open_bi().await.unwrap();
            s.write_all(&f).await.unwrap();
            let _ = s.finish();
            let resp = read_raw_response(&mut r).await;
            assert_eq!(resp.status, Status::BadRequest, "{}", resp.message);
        }
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_the_limit_is_too_large() {
    bounded(async {
        let relay = TestRelay::start(|c| c.max_message = 64 << 10).await;
        let a = RelayClient::connect(relay.client("job")).await.unwrap();
        let r = a.put("big", bytes((64 << 10) + 1, 0)).await;
        assert!(matches!(r, Err(ClientError::TooLarge(_))), "{r:?}");
        a.put("fits", bytes(64 << 10, 0)).await.unwrap();
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cap_waits_then_relay_full_and_evicts_read_first() {
    bounded(async {
        const KIB: usize = 1024;
        let relay = TestRelay::start(|c| {
            c.max_message = 512 * KIB as u64;
            mailbox_cap(c, 1024 * KIB as u64);
        })
        .await;
        let mut cfg = relay.client("job");
        cfg.put_timeout = Duration::from_millis(400);
        let a = Arc::new(RelayClient::connect(cfg).await.unwrap());
        a.put("a", bytes(400 * KIB, 1)).await.unwrap();
        a.put("b", bytes(400 * KIB, 2)).await.unwrap();

        // Unread messages fill the cap: the put waits its timeout, then fails.
        let t = Instant::now();
        let r = a.put("c", bytes(400 * KIB, 3)).await;
        assert!(matches!(r, Err(ClientError::RelayFull(_))), "{r:?}");
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );

        // Once "a" is read it may be evicted to make room.
        a.get("a", Duration::from_secs(1)).await.unwrap();
        a.put("c", bytes(400 * KIB, 3)).await.unwrap();
        let r = a.get("a", Duration::from_secs(1)).await;
        assert!(matches!(r, Err(ClientError::Evicted(_))), "{r:?}");

        // A put that is waiting proceeds as soon as a read frees room.
        let waiting = {
            let a = a.clone();
            tokio::spawn(async move { a.put("d", bytes(400 * KIB, 4)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        a.get("b", Duration::from_secs(1)).await.unwrap();
        waiting.await.unwrap().unwrap();
        assert_eq!(
            &a.get("d", Duration::from_secs(1)).await.unwrap()[..],
            &bytes(400 * KIB, 4)[..]
        );
        assert!(matches!(
            a.get("b", Duration::from_secs(1)).await,
            Err(ClientError::Evicted(_))
        ));

        let s = relay.stats.get();
        assert!(s.peak_bytes_held <= 1024 * KIB as u64, "{s:?}");
        assert_eq!(s.bytes_held, 800 * KIB as u64, "{s:?}");
        assert_eq!(s.evictions, 2);
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_bytes_stay_under_the_cap_under_load() {
    bounded(async {
        const CAP: u64 = 2 << 20;
        let relay = TestRelay::start(|c| {
            c.max_message = 256 << 10;
            mailbox_cap(c, CAP);
        })
        .await;
        let c = Arc::new(RelayClient::connect(relay.client("job")).await.unwrap());
        // 40 producers of 200 KiB (8 MB in all, 4x the cap) and their readers.
        let mut tasks = Vec::new();
        for i in 0..40u8 {
            let p = c.clone();
            tasks.push(tokio::spawn(async move {
                p.put(&format!("m{i}"), bytes(200 << 10, i)).await.unwrap();
            }));
            let g = c.clone();
            tasks.push(tokio::spawn(async move {
                let got = g
                    .get(&format!("m{i}"), Duration::from_secs(30))
                    .await
                    .unwrap();
                assert_eq!(got, bytes(200 << 10, i));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let s = relay.stats.get();
        assert!(s.peak_bytes_held <= CAP, "{s:?}");
        assert!(s.bytes_held <= CAP);
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_put_is_idempotent_and_different_bytes_conflict() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let a = RelayClient::connect(relay.client("job")).await.unwrap();
        let speculative = RelayClient::connect(relay.client("job")).await.unwrap();
        let data = bytes(300_000, 7);
        a.put("state/3", data.clone()).await.unwrap();
        // A duplicate worker puts the same bytes: harmless.
        speculative.put("state/3", data.clone()).await.unwrap();
        a.put("state/3", data.clone()).await.unwrap();
        // Different bytes, same length and different length: a bug, refused.
        let r = speculative.put("state/3", bytes(300_000, 8)).await;
        assert!(matches!(r, Err(ClientError::Conflict(_))), "{r:?}");
        let r = speculative.put("state/3", bytes(10, 8)).await;
        assert!(matches!(r, Err(ClientError::Conflict(_))), "{r:?}");
        assert_eq!(
            a.get("state/3", Duration::from_secs(1)).await.unwrap(),
            data
        );
        let s = relay.stats.get();
        assert_eq!(s.conflicts, 2);
        assert_eq!(s.bytes_held, 300_000);
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_job_releases_waiters_and_memory() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let a = Arc::new(RelayClient::connect(relay.client("job")).await.unwrap());
        a.put("m", bytes(1000, 1)).await.unwrap();
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.get("pending", Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.end_job().await.unwrap();
        let r = waiter.await.unwrap();
        assert!(matches!(r, Err(ClientError::JobEnded)), "{r:?}");
        assert!(matches!(
            a.put("m2", bytes(10, 1)).await,
            Err(ClientError::JobEnded)
        ));
        let s = relay.stats.get();
        assert_eq!((s.bytes_held, s.mailboxes), (0, 0), "{s:?}");
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_bounded() {
    bounded(async {
        let relay = TestRelay::start(|c| {
            c.max_jobs = 1;
            c.max_mailboxes_per_job = 2;
            c.max_connections = 2;
        })
        .await;
        let a = RelayClient::connect(relay.client("job")).await.unwrap();
        a.put("1", bytes(10, 1)).await.unwrap();
        a.put("2", bytes(10, 2)).await.unwrap();
        let r = a.put("3", bytes(10, 3)).await;
        assert!(matches!(r, Err(ClientError::LimitReached(_))), "{r:?}");
        let b = RelayClient::connect(relay.client("other")).await.unwrap();
        let r = b.put("1", bytes(10, 1)).await;
        assert!(matches!(r, Err(ClientError::LimitReached(_))), "{r:?}");
        // A third connection is refused; the client gives up after its budget.
        let mut cfg = relay.client("job");
        cfg.retry_for = Duration::from_millis(500);
        let r = RelayClient::connect(cfg).await;
        assert!(
            matches!(r, Err(ClientError::Unavailable(_))),
            "{:?}",
            r.err()
        );
        assert!(relay.stats.get().connections <= 2);
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn fingerprint_display_matches_pin_format() {
    let id = TlsIdentity::self_signed().unwrap();
    let fp = id.fingerprint();
    assert_eq!(Fingerprint::of(id.certificate()), fp);
    assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
    assert!(proto::check_mailbox("state/17/final").is_ok());
}
