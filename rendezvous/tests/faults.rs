//! Faults: relay restarts mid-exchange, graceful drain, and the 500-client ring.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, TestRelay};
use excam_rendezvous::bench::{run_ring, RingConfig};
use excam_rendezvous::{RelayClient, RelayConfig};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restart_mid_exchange() {
    bounded(async {
        let relay = TestRelay::start(|_| {}).await;
        let addr = relay.addr;
        let mut cfg = RelayConfig::new(relay.secret.clone());
        cfg.identity = Some(relay.identity.clone());

        let consumer = Arc::new(RelayClient::connect(relay.client("job")).await.unwrap());
        let producer = Arc::new(RelayClient::connect(relay.client("job")).await.unwrap());
        // A completed exchange before the restart.
        producer
            .put("before", Bytes::from_static(b"b"))
            .await
            .unwrap();
        assert_eq!(
            &consumer
                .get("before", Duration::from_secs(1))
                .await
                .unwrap()[..],
            b"b"
        );

        // The consumer is waiting when the relay goes down.
        let waiting = {
            let c = consumer.clone();
            tokio::spawn(async move { c.get("state/1", Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        relay.stop().await;

        // While the relay is down, the producer's put keeps retrying.
        let putting = {
            let p = producer.clone();
            tokio::spawn(async move { p.put("state/1", Bytes::from_static(b"payload")).await })
        };
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !putting.is_finished(),
            "put cannot succeed with the relay down"
        );
        assert!(!waiting.is_finished(), "get must outlive the restart");

        // Same address, secret and certificate: the pinned clients come back.
        let relay = TestRelay::start_at(addr, cfg).await;
        tokio::time::timeout(Duration::from_secs(15), putting)
            .await
            .expect("put did not complete after restart")
            .unwrap()
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(15), waiting)
            .await
            .expect("get did not complete after restart")
            .unwrap()
            .unwrap();
        assert_eq!(&got[..], b"payload");
        // State did not survive the restart: the earlier mailbox is gone,
        // and a fresh put works.
        let r = consumer.get("before", Duration::from_millis(200)).await;
        assert!(r.is_err());
        producer
            .put("after", Bytes::from_static(b"a"))
            .await
            .unwrap();
        relay.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_a_put_in_flight() {
    bounded(async {
        let relay = TestRelay::start(|c| c.max_message = 64 << 20).await;
        let stats = relay.stats.clone();
        let c = Arc::new(RelayClient::connect(relay.client("job")).await.unwrap());
        let data = Bytes::from(vec![5u8; 32 << 20]);
        let put = {
            let c = c.clone();
            let d = data.clone();
            tokio::spawn(async move { c.put("big", d).await })
        };
        // Stop once the relay has reserved memory, i.e. the body is streaming.
        let t = Instant::now();
        while stats.get().bytes_held == 0 && t.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(stats.get().bytes_held > 0, "put never reached the relay");
        relay.stop().await;
        // The in-flight put was allowed to finish before the relay stopped.
        put.await.unwrap().unwrap();
        assert_eq!(stats.get().mailboxes, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_of_500_clients_with_256_kib_messages() {
    bounded(async {
        excam_rendezvous::raise_nofile_limit().unwrap();
        let relay = TestRelay::start(|_| {}).await;
        let mut cfg = RingConfig::new(relay.client("ring"), 500, 256 << 10);
        cfg.get_timeout = Duration::from_secs(50);
        let report = run_ring(cfg).await.unwrap();
        eprintln!("{} (connect {:.2}s)", report.to_json(), report.connect_s);
        assert_eq!(report.errors, 0, "{:?}", report.first_error);
        assert_eq!(report.messages, 500);
        assert_eq!(report.bytes, 500 * (256 << 10));
        assert!(relay.stats.get().peak_bytes_held <= 1 << 30);
        relay.stop().await;
    })
    .await;
}
