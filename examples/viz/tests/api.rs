//! The `viz` example's JSON API, tested over HTTP against the running server: the example's
//! network and server modules started in-process, on an ephemeral port on 127.0.0.1, with real
//! libp2p swarms underneath.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use viz::{Graph, Network, Node, Options, server};

/// A network behind a server on an ephemeral loopback port.
struct Viz {
    base: String,
    http: reqwest::Client,
}

impl Viz {
    async fn start(options: Options) -> Viz {
        let network = Network::start(options).await.expect("the network starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server::serve(listener, network));
        Viz {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, value)
    }

    async fn graph_json(&self) -> Value {
        let (status, graph) = self.request(reqwest::Method::GET, "/api/graph", None).await;
        assert_eq!(status, StatusCode::OK);
        graph
    }

    async fn graph(&self) -> Graph {
        serde_json::from_value(self.graph_json().await).expect("the graph has the documented shape")
    }

    async fn post(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, None).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    async fn put_settings(&self, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::PUT, "/api/settings", Some(body))
            .await
    }

    /// Polls the graph until `check` returns something, or fails after `timeout`.
    async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Graph) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let graph = self.graph().await;
            if let Some(found) = check(&graph) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; last graph: {graph:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn node<'a>(graph: &'a Graph, id: &str) -> Option<&'a Node> {
    graph.nodes.iter().find(|n| n.id == id)
}

fn options(peers: usize, interval_ms: u64, paused: bool) -> Options {
    Options {
        peers,
        view_size: 4,
        shuffle_length: 2,
        interval: Duration::from_millis(interval_ms),
        request_timeout: Duration::from_secs(2),
        paused,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_shows_the_ring_bootstrap_and_the_page_is_served() {
    let viz = Viz::start(options(6, 1000, true)).await;
    let graph = viz.graph_json().await;

    let nodes = graph["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6);
    for node in nodes {
        assert!(node["id"].is_string(), "{node}");
        assert_eq!(node["alive"], json!(true), "{node}");
        assert_eq!(node["view_len"], json!(1), "{node}");
        assert_eq!(node["paused"], json!(true), "{node}");
    }
    // A ring: peer i knows peer i + 1, with age 0.
    let edges = graph["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 6);
    for (i, node) in nodes.iter().enumerate() {
        let next = &nodes[(i + 1) % nodes.len()];
        assert!(
            edges.iter().any(|e| e["source"] == node["id"]
                && e["target"] == next["id"]
                && e["age"] == json!(0)),
            "no edge {i} -> {}: {edges:?}",
            i + 1
        );
    }
    assert_eq!(graph["stats"]["connected"], json!(true));
    assert_eq!(graph["stats"]["dead_links"], json!(0));
    assert_eq!(graph["stats"]["in_degree_histogram"], json!([0, 6]));
    assert_eq!(graph["settings"]["paused"], json!(true));
    assert_eq!(graph["settings"]["interval_ms"], json!(1000));

    // The page and its assets come from the binary.
    for (path, needle) in [
        ("/", "/app.js"),
        ("/app.js", "EventSource"),
        ("/style.css", ".node"),
    ] {
        let response = viz
            .http
            .get(format!("{}{path}", viz.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.text().await.unwrap().contains(needle), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_peer_grows_the_graph_and_the_peer_joins_the_overlay() {
    // Paused at first, so that the new peer's bootstrap view is seen before it shuffles.
    let viz = Viz::start(options(5, 100, true)).await;
    assert_eq!(viz.graph().await.nodes.len(), 5);

    let (status, added) = viz.post("/api/peers").await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let id = added["id"].as_str().expect("the new peer's id").to_string();
    assert_eq!(added["label"], json!("p5"));
    assert_eq!(
        added["paused"],
        json!(true),
        "a new peer follows the settings"
    );

    let graph = viz.graph().await;
    assert_eq!(graph.nodes.len(), 6);
    assert_eq!(graph.stats.peers, 6);
    let new = node(&graph, &id).expect("the new peer is in the graph");
    assert!(new.alive);
    assert_eq!(new.view_len, 1, "bootstrapped with one live peer: {new:?}");
    assert_eq!(new.in_degree, 0, "nobody knows it yet: {new:?}");
    let contact = graph.edges.iter().find(|e| e.source == id).unwrap();
    assert!(node(&graph, &contact.target).unwrap().alive);

    let (status, _) = viz.put_settings(json!({ "paused": false })).await;
    assert_eq!(status, StatusCode::OK);
    // Shuffling spreads it: other peers take it into their views.
    viz.wait_for(
        "another peer to know the new one",
        Duration::from_secs(20),
        |g| node(g, &id).filter(|n| n.in_degree > 0).map(|_| ()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_peer_leaves_dead_links_that_vanish_within_bounded_time() {
    let viz = Viz::start(options(8, 100, false)).await;
    // Let the ring mix, then freeze the views (paused, nothing in flight) so that the kill
    // leaves a known number of dead links.
    viz.wait_for("16 shuffles", Duration::from_secs(20), |g| {
        (g.stats.shuffles_completed >= 16).then_some(())
    })
    .await;
    let (status, _) = viz.put_settings(json!({ "paused": true })).await;
    assert_eq!(status, StatusCode::OK);
    let graph = viz
        .wait_for(
            "the shuffles in flight to end",
            Duration::from_secs(10),
            |g| {
                g.nodes
                    .iter()
                    .all(|n| n.shuffles_started == n.shuffles_completed + n.shuffles_failed)
                    .then(|| g.clone())
            },
        )
        .await;
    let victim = graph.nodes.iter().max_by_key(|n| n.in_degree).unwrap();
    let (victim, in_degree) = (victim.id.clone(), victim.in_degree);
    assert!(in_degree >= 1);

    let (status, body) = viz.delete(&format!("/api/peers/{victim}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let graph = viz.graph().await;
    let dead = node(&graph, &victim).expect("a dead peer is listed while views point to it");
    assert!(!dead.alive);
    assert_eq!(dead.view_len, 0);
    assert_eq!(graph.stats.peers, 7);
    assert_eq!(graph.stats.dead_links, in_degree);
    assert!(graph.edges.iter().all(|e| e.source != victim));
    assert!(
        graph
            .edges
            .iter()
            .filter(|e| e.target == victim)
            .all(|e| e.dead)
    );

    // Killing it twice, or a peer that never was, or garbage, is refused.
    let (status, _) = viz.delete(&format!("/api/peers/{victim}")).await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _) = viz
        .delete(&format!("/api/peers/{}", libp2p::PeerId::random()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = viz.delete("/api/peers/not-a-peer-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Shuffling purges the dead links: the dead peer's entries get old, are picked as
    // targets, fail to answer, and are dropped.
    let (status, _) = viz.put_settings(json!({ "paused": false })).await;
    assert_eq!(status, StatusCode::OK);
    let graph = viz
        .wait_for("the dead links to vanish", Duration::from_secs(30), |g| {
            (g.stats.dead_links == 0 && g.edges.iter().all(|e| e.target != victim))
                .then(|| g.clone())
        })
        .await;
    assert!(
        node(&graph, &victim).is_none(),
        "a dead peer nobody points to is not listed"
    );
    assert_eq!(graph.stats.dead_peers, 0);
    assert!(graph.nodes.iter().all(|n| n.alive));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffle_makes_that_peer_complete_a_shuffle() {
    let viz = Viz::start(options(4, 1000, true)).await;
    let graph = viz.graph().await;
    let peer = graph.nodes[0].clone();
    assert_eq!(peer.shuffles_completed, 0);

    let (status, started) = viz.post(&format!("/api/peers/{}/shuffle", peer.id)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["peer"], json!(peer.id));
    assert!(started["shuffle_id"].is_u64(), "{started}");

    let graph = viz
        .wait_for("the shuffle to complete", Duration::from_secs(10), |g| {
            node(g, &peer.id)
                .filter(|n| n.shuffles_completed == 1)
                .map(|_| g.clone())
        })
        .await;
    // Everything is paused: nobody else started a shuffle, and the ring successor answered.
    let shuffled = node(&graph, &peer.id).unwrap();
    assert_eq!(shuffled.shuffles_started, 1);
    assert_eq!(shuffled.shuffles_failed, 0);
    let successor = &graph.nodes[1];
    assert_eq!(successor.shuffles_answered, 1);
    for other in &graph.nodes[1..] {
        assert_eq!(other.shuffles_started, 0, "{other:?}");
    }
    // The link reversed: the successor now knows the shuffler.
    assert!(
        graph
            .edges
            .iter()
            .any(|e| e.source == successor.id && e.target == peer.id)
    );
    assert_eq!(graph.stats.shuffles_completed, 1);

    let (status, _) = viz
        .post(&format!("/api/peers/{}/shuffle", libp2p::PeerId::random()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffle_with_an_empty_view_is_a_conflict() {
    // Two peers in a ring: after p0 shuffles with p1, p1 had nothing but p0 to send back, so
    // p0's view is empty.
    let viz = Viz::start(options(2, 1000, true)).await;
    let p0 = viz.graph().await.nodes[0].id.clone();
    let (status, _) = viz.post(&format!("/api/peers/{p0}/shuffle")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    viz.wait_for("p0's shuffle to complete", Duration::from_secs(10), |g| {
        node(g, &p0)
            .filter(|n| n.shuffles_completed == 1 && n.view_len == 0)
            .map(|_| ())
    })
    .await;
    let (status, body) = viz.post(&format!("/api/peers/{p0}/shuffle")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("empty"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_pause_resume_and_change_the_interval() {
    let viz = Viz::start(options(5, 1000, false)).await;
    let (status, body) = viz.put_settings(json!({ "interval_ms": 10 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, settings) = viz.put_settings(json!({ "paused": true })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["paused"], json!(true));
    // Applied by every peer before the answer.
    let graph = viz.graph().await;
    assert!(graph.settings.paused);
    assert!(graph.nodes.iter().all(|n| n.paused), "{:?}", graph.nodes);

    let (status, settings) = viz
        .put_settings(json!({ "paused": false, "interval_ms": 100 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["paused"], json!(false));
    assert_eq!(settings["interval_ms"], json!(100));
    let (status, settings) = viz
        .request(reqwest::Method::GET, "/api/settings", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["interval_ms"], json!(100));
    let graph = viz.graph().await;
    assert!(graph.nodes.iter().all(|n| !n.paused));

    // At 100 ms, five peers complete dozens of shuffles within a few seconds (at the initial
    // 1 s they would need several seconds for 25).
    let before = graph.stats.shuffles_completed;
    let started = Instant::now();
    viz.wait_for("25 more shuffles", Duration::from_secs(20), |g| {
        (g.stats.shuffles_completed >= before + 25 && g.stats.shuffles_per_second > 0.0)
            .then_some(())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "25 shuffles took {:?}: the new interval is not in force",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_sends_the_graph() {
    let viz = Viz::start(options(3, 1000, true)).await;
    let mut response = viz
        .http
        .get(format!("{}/api/events", viz.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline.into(), response.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("event: graph"));
    let data = lines
        .next()
        .unwrap()
        .strip_prefix("data: ")
        .expect("a data line");
    let graph: Graph = serde_json::from_str(data).unwrap();
    assert_eq!(graph.nodes.len(), 3);
}
