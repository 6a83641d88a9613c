//! The relay's memory and time bounds, each exercised over loopback QUIC:
//! per-job share, waiters cancelled with their connection, put-body and
//! answer deadlines, windows and slots before authentication.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, mailbox_cap, TestRelay};
use excam_rendezvous::proto::{FrameHeader, Request, Response, Status, HEADER_LEN};
use excam_rendezvous::tls::client_crypto;
use excam_rendezvous::{ClientError, RelayClient, ServerAuth};
use tokio::time::Instant;

fn bytes(n: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect::<Vec<_>>(),
    )
}

fn quic_client(relay: &TestRelay) -> quinn::ClientConfig {
    let crypto = client_crypto(&ServerAuth::Pinned(relay.fingerprint)).unwrap();
    quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap(),
    ))
}

/// A connection that has finished its handshake but said no hello.
async fn unauthenticated(relay: &TestRelay, ep: &quinn::Endpoint) -> quinn::Connection {
    ep.connect_with(quic_client(relay), relay.addr, "excam-relay")
        .unwrap()
        .await
        .unwrap()
}

/// A connection authenticated for `job`.
async fn authenticated(relay: &TestRelay, job: &str) -> (quinn::Endpoint, quinn::Connection) {
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = unauthenticated(relay, &ep).await;
    let (mut s, mut r) = conn.open_bi().await.unwrap();
    let hello = Request::Hello {
        job: job.into(),
        token: relay.secret.token(job),
    };
    s.write_all(&hello.encode(0)).await.unwrap();
    s.finish().unwrap();
    assert_eq!(read_response(&mut r).await.status, Status::Ok);
    (ep, conn)
}

async fn read_response(r: &mut quinn::RecvStream) -> Response {
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h).await.unwrap();
    let header = FrameHeader::check(&h, u64::MAX).unwrap();
    let mut meta = vec![0u8; usize::from(header.meta_len)];
    r.read_exact(&mut meta).await.unwrap();
    Response::parse(&header, &meta).unwrap()
}

/// Polls `f` until it holds or `within` passes; returns whether it held.
async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_job_cannot_take_the_whole_cap() {
    bounded(async {
        const KIB: u64 = 1024;
        let relay = TestRelay::start(|c| {
            mailbox_cap(c, 2048 * KIB);
            c.job_share = Some(600 * KIB);
        })
        .await;
        let mut cfg = relay.client("greedy");
        cfg.put_timeout = Duration::from_millis(300);
        let greedy = RelayClient::connect(cfg).await.unwrap();
        greedy.put("a", bytes(400 << 10, 1)).await.unwrap();
        // The relay has 1.6 MiB free, but not the greedy job.
        let r = greedy.put("b", bytes(400 << 10, 2)).await;
        match r {
            Err(ClientError::RelayFull(m)) => assert!(m.contains("share"), "{m}"),
            other => panic!("over its share: {other:?}"),
        }
        // Another job still has room.
        let other = RelayClient::connect(relay.client("other")).await.unwrap();
        other.put("a", bytes(400 << 10, 3)).await.unwrap();
        // Reading its own mailbox makes it evictable: the greedy job may go on.
        greedy.get("a", Duration::from_secs(1)).await.unwrap();
        greedy.put("b", bytes(400 << 10, 2)).await.unwrap();
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_get_is_cancelled_when_its_connection_closes() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let (ep, conn) = authenticated(&relay, "job").await;
        let (mut s, _r) = conn.open_bi().await.unwrap();
        let get = Request::Get {
            mailbox: "never".into(),
            timeout: Duration::from_secs(600),
        };
        s.write_all(&get.encode(0)).await.unwrap();
        s.finish().unwrap();
        assert!(
            eventually(Duration::from_secs(2), || relay.stats.get().mailboxes == 1).await,
            "the get never started waiting"
        );
        conn.close(0u32.into(), b"gone");
        ep.wait_idle().await;
        // Without cancellation the waiter would hold its mailbox for 600 s.
        assert!(
            eventually(Duration::from_secs(2), || relay.stats.get().mailboxes == 0).await,
            "{:?}",
            relay.stats.get()
        );
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_per_mailbox_are_capped() {
    bounded(async {
        let relay = TestRelay::start(|c| c.max_waiters_per_mailbox = 2).await;
        let a = Arc::new(RelayClient::connect(relay.client("job")).await.unwrap());
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let a = a.clone();
                tokio::spawn(async move { a.get("m", Duration::from_secs(10)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = a.get("m", Duration::from_secs(10)).await;
        assert!(matches!(r, Err(ClientError::LimitReached(_))), "{r:?}");
        a.put("m", Bytes::from_static(b"x")).await.unwrap();
        for w in waiting {
            assert_eq!(&w.await.unwrap().unwrap()[..], b"x");
        }
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_body_that_never_arrives_is_dropped_and_released() {
    bounded(async {
        let relay = TestRelay::start(|c| c.body_timeout = Duration::from_millis(400)).await;
        let (_ep, conn) = authenticated(&relay, "job").await;
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        let put = Request::Put {
            mailbox: "m".into(),
            timeout: Duration::from_secs(60),
        };
        s.write_all(&put.encode(200_000)).await.unwrap();
        assert_eq!(read_response(&mut r).await.status, Status::Continue);
        // Memory is reserved for the body, which never comes.
        assert_eq!(relay.stats.get().bytes_held, 200_000);
        let t = Instant::now();
        let answer = read_response(&mut r).await;
        assert_eq!(answer.status, Status::BadRequest, "{answer:?}");
        assert!(answer.message.contains("did not arrive"), "{answer:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(relay.stats.get().bytes_held, 0);
        // The connection is still good for honest work.
        drop(conn);
        let c = RelayClient::connect(relay.client("job")).await.unwrap();
        c.put("m", bytes(1000, 1)).await.unwrap();
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_that_never_reads_is_reset() {
    bounded(async {
        let relay = TestRelay::start(|c| c.response_timeout = Duration::from_millis(500)).await;
        let c = RelayClient::connect(relay.client("job")).await.unwrap();
        // Far more than the relay's send window plus the reader's windows.
        c.put("big", bytes(8 << 20, 1)).await.unwrap();
        let (_ep, conn) = authenticated(&relay, "job").await;
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        let get = Request::Get {
            mailbox: "big".into(),
            timeout: Duration::from_secs(5),
        };
        s.write_all(&get.encode(0)).await.unwrap();
        s.finish().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Too late: the relay gave up on this reader.
        let read = r.read_to_end(16 << 20).await;
        assert!(
            matches!(
                read,
                Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(_)))
            ),
            "{:?}",
            read.map(|b| b.len())
        );
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_peer_gets_one_stream_and_no_slot() {
    bounded(async {
        let relay = TestRelay::start(|c| c.hello_timeout = Duration::from_secs(30)).await;
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let conn = unauthenticated(&relay, &ep).await;
        // Half a hello on the first stream keeps the relay waiting for it.
        let hello = Request::Hello {
            job: "job".into(),
            token: relay.secret.token("job"),
        }
        .encode(0);
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        s.write_all(&hello[..8]).await.unwrap();
        // No second stream to park data in before the hello.
        let second = tokio::time::timeout(Duration::from_millis(300), conn.open_bi()).await;
        assert!(second.is_err(), "a second stream before any hello");
        let st = relay.stats.get();
        assert_eq!((st.unauthenticated, st.connections), (1, 0), "{st:?}");
        // The rest of the hello: a slot, and the streams come.
        s.write_all(&hello[8..]).await.unwrap();
        s.finish().unwrap();
        assert_eq!(read_response(&mut r).await.status, Status::Ok);
        let st = relay.stats.get();
        assert_eq!((st.unauthenticated, st.connections), (0, 1), "{st:?}");
        let mut streams = Vec::new();
        for _ in 0..8 {
            let opened = tokio::time::timeout(Duration::from_secs(2), conn.open_bi()).await;
            streams.push(opened.expect("streams after the hello").unwrap());
        }
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_flood_does_not_lock_out_workers() {
    bounded(async {
        let relay = TestRelay::start(|c| {
            c.max_unauthenticated = 16;
            // Long enough that only eviction, not the deadline, frees slots.
            c.hello_timeout = Duration::from_secs(30);
        })
        .await;
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The flood: keeps opening silent connections, four times the slots.
        let flood = {
            let (ep, stop) = (ep.clone(), stop.clone());
            let cfg = quic_client(&relay);
            let addr = relay.addr;
            tokio::spawn(async move {
                let mut held = std::collections::VecDeque::new();
                let mut opened = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(c) = ep.connect_with(cfg.clone(), addr, "excam-relay") {
                        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(1), c).await {
                            held.push_back(c);
                            opened += 1;
                        }
                    }
                    if held.len() > 64 {
                        held.pop_front();
                    }
                }
                opened
            })
        };
        assert!(
            eventually(Duration::from_secs(10), || relay
                .stats
                .get()
                .unauthenticated
                >= 16)
            .await,
            "the flood never filled the slots: {:?}",
            relay.stats.get()
        );
        let t = Instant::now();
        let mut cfg = relay.client("job");
        cfg.retry_for = Duration::from_secs(10);
        let honest = RelayClient::connect(cfg).await.unwrap();
        honest.put("m", bytes(100_000, 1)).await.unwrap();
        assert_eq!(
            honest.get("m", Duration::from_secs(1)).await.unwrap(),
            bytes(100_000, 1)
        );
        let took = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let opened = flood.await.unwrap();
        assert!(opened > 16, "flood opened only {opened}");
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert!(relay.stats.get().unauthenticated <= 16);
        relay.stop().await;
    })
    .await;
}
