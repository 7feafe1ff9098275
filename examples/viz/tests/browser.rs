//! The `viz` page in a real browser: headless Chromium driven over WebDriver (chromedriver +
//! fantoccini) against the example's server, started in-process on an ephemeral loopback port.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`,
//! which `.ci/run` does). Where they are missing the test prints why and skips, unless
//! `CYCLON_REQUIRE_BROWSER=1` is set (as `.ci/run` sets it once it installed them), in which
//! case it fails. `CHROMIUM` and `CHROMEDRIVER` override the programs' paths.
//!
//! The README's screenshot comes from the ignored test `screenshot`:
//! `VIZ_SCREENSHOT=$PWD/docs/viz.png cargo test --release -p cyclon-viz --test browser -- --ignored screenshot`.

use std::{
    io::Write,
    net::TcpListener as StdTcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use viz::{Graph, Network, Options, server};

/// How long any one thing may take to show up in the page.
const WAIT: Duration = Duration::from_secs(20);

/// Finds a program: the environment variable `env`, else the first of `names` on `PATH`.
fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Chromium and chromedriver, or `None` (after saying so) when the test has to skip.
fn browser_programs(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program(
        "CHROMIUM",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ],
    );
    let chromedriver = find_program("CHROMEDRIVER", &["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some((chromium, chromedriver)),
        (chromium, chromedriver) => {
            let missing: Vec<&str> = [
                chromium.is_none().then_some("chromium"),
                chromedriver.is_none().then_some("chromedriver"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let message = format!(
                "SKIPPED {test}: no {} found (install Debian's chromium and chromium-driver, \
                 as .ci/run does, or set CHROMIUM / CHROMEDRIVER)",
                missing.join(" or ")
            );
            assert!(
                std::env::var_os("CYCLON_REQUIRE_BROWSER").is_none(),
                "{message}, but CYCLON_REQUIRE_BROWSER is set"
            );
            // Straight to the process's stderr, past the test harness's capture, so that the
            // skip is visible in a plain `cargo test`.
            let _ = writeln!(std::io::stderr(), "\n{message}\n");
            None
        }
    }
}

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!("{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A chromedriver process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group, with the browser it started: end the
        // group, so that no browser outlives a test that failed before closing its session.
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_chromedriver(chromedriver: &Path, scratch: &Path) -> Driver {
    let port = StdTcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = scratch.join("chromedriver.log");
    let mut command = Command::new(chromedriver);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let mut driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = http.get(format!("{}/status", driver.url)).send().await
            && let Ok(status) = response.json::<Value>().await
            && status["value"]["ready"] == json!(true)
        {
            return driver;
        }
        if let Ok(Some(exit)) = driver.child.try_wait() {
            panic!(
                "chromedriver exited ({exit}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver not ready within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Headless Chromium, with the flags that work on a machine without a display, sandbox or
/// outside network.
async fn start_browser(chromium: &Path, driver: &Driver, profile: &Path) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("chromedriver starts a Chromium session")
}

/// The network and its server on an ephemeral loopback port.
async fn start_viz(options: Options) -> (Network, String) {
    let network = Network::start(options).await.expect("the network starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(server::serve(listener, network.clone()));
    (network, base)
}

/// Runs `script` in the page until `check` accepts its result, or fails after [`WAIT`].
async fn wait_in_page<T>(
    browser: &Client,
    what: &str,
    script: &str,
    mut check: impl FnMut(&Value) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = browser
            .execute(script, vec![])
            .await
            .expect("the script runs");
        if let Some(found) = check(&value) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}; last: {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the network until `check` accepts its graph, or fails after [`WAIT`].
async fn wait_in_network<T>(
    network: &Network,
    what: &str,
    mut check: impl FnMut(&Graph) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let graph = network.graph();
        if let Some(found) = check(&graph) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const COUNT_NODES: &str = "return document.querySelectorAll('#graph g.node').length;";

/// Clicks the element `css` selects. A node still moving with the layout can be hit beside
/// the spot WebDriver aimed at; such a click is tried again until [`WAIT`] has passed.
async fn click(browser: &Client, css: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let element = browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} in the page: {e}"));
        match element.click().await {
            Ok(_) => return,
            Err(e) if e.to_string().contains("click intercepted") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot click {css}: {e}"),
        }
    }
}

/// Waits until the page's layout has cooled down (`view.alpha` below the threshold at which
/// app.js stops moving nodes).
async fn wait_for_layout_to_settle(browser: &Client) {
    wait_in_page(
        browser,
        "the layout to settle",
        "return view.alpha < 0.005;",
        |v| v.as_bool()?.then_some(()),
    )
    .await;
}

/// The view the page's panel shows: (label, age) per row.
const PANEL_VIEW: &str = "return [...document.querySelectorAll('#selected-view tbody tr')]\
     .map(tr => [tr.cells[0].textContent.trim(), Number(tr.cells[1].textContent)]);";

/// The view the network has for `id`, as the panel should show it: (label, age), sorted.
fn network_view(graph: &Graph, id: &str) -> Vec<(String, u64)> {
    let label = |peer: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.id == peer)
            .map(|n| n.label.clone())
            .unwrap_or_default()
    };
    let mut view: Vec<(String, u64)> = graph
        .edges
        .iter()
        .filter(|e| e.source == id)
        .map(|e| (label(&e.target), u64::from(e.age)))
        .collect();
    view.sort();
    view
}

fn rows(value: &Value) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| Some((row[0].as_str()?.to_string(), row[1].as_u64()?)))
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_renders_the_overlay_and_its_controls_drive_the_network() {
    let Some((chromium, chromedriver)) = browser_programs("viz_browser") else {
        return;
    };
    let peers = 6;
    let (network, base) = start_viz(Options {
        peers,
        view_size: 4,
        shuffle_length: 2,
        interval: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let scratch = TempDir::new("viz-browser");
    let driver = start_chromedriver(&chromedriver, &scratch.0).await;
    let browser = start_browser(&chromium, &driver, &scratch.0.join("profile")).await;
    browser.goto(&base).await.expect("the page loads");

    // The graph renders with N nodes and their links, and live updates are connected.
    wait_in_page(&browser, "N nodes", COUNT_NODES, |v| {
        (v.as_u64() == Some(peers as u64)).then_some(())
    })
    .await;
    wait_in_page(
        &browser,
        "links drawn",
        "return document.querySelectorAll('#graph path.edge').length;",
        |v| (v.as_u64()? >= peers as u64).then_some(()),
    )
    .await;
    wait_in_page(
        &browser,
        "the event stream",
        "return document.getElementById('status').textContent;",
        |v| (v.as_str() == Some("live")).then_some(()),
    )
    .await;

    // "Add peer" adds a peer, in the network and on the page.
    click(&browser, "#add-peer").await;
    wait_in_page(&browser, "N + 1 nodes", COUNT_NODES, |v| {
        (v.as_u64() == Some(peers as u64 + 1)).then_some(())
    })
    .await;
    assert_eq!(network.graph().stats.peers, peers + 1);

    // "Pause all" pauses every peer, so that the clicked peer's view below holds still.
    click(&browser, "#toggle-pause").await;
    wait_in_network(&network, "every peer paused", |g| {
        g.nodes.iter().all(|n| n.paused).then_some(())
    })
    .await;
    wait_in_page(
        &browser,
        "the resume button",
        "return document.getElementById('toggle-pause').textContent;",
        |v| (v.as_str() == Some("Resume all")).then_some(()),
    )
    .await;
    wait_in_network(&network, "the shuffles in flight to end", |g| {
        g.nodes
            .iter()
            .all(|n| n.shuffles_started == n.shuffles_completed + n.shuffles_failed)
            .then_some(())
    })
    .await;

    // Clicking a peer selects it (its view shows in the panel) and makes it shuffle now.
    let graph = network.graph();
    let peer = graph
        .nodes
        .iter()
        .find(|n| n.alive && n.view_len > 0)
        .expect("a peer with a non-empty view")
        .clone();
    // Nodes move until the force layout settles (every view change reheats it); a click on
    // a moving node can land on the canvas instead, so wait for it to hold still.
    wait_for_layout_to_settle(&browser).await;
    click(
        &browser,
        &format!("#graph g.node[data-id='{}'] circle", peer.id),
    )
    .await;
    wait_in_page(
        &browser,
        "the clicked peer in the panel",
        "return document.getElementById('selected').hidden ? null \
         : document.getElementById('selected-id').textContent;",
        |v| (v.as_str() == Some(peer.id.as_str())).then_some(()),
    )
    .await;
    let graph = wait_in_network(&network, "the click's shuffle to complete", |g| {
        let now = g.nodes.iter().find(|n| n.id == peer.id)?;
        (now.shuffles_completed + now.shuffles_failed
            > peer.shuffles_completed + peer.shuffles_failed
            && now.shuffles_started == now.shuffles_completed + now.shuffles_failed)
            .then(|| g.clone())
    })
    .await;
    // The panel shows the peer's view after that shuffle, entry by entry with ages.
    let expected = network_view(&graph, &peer.id);
    wait_in_page(&browser, "the peer's view in the panel", PANEL_VIEW, |v| {
        (rows(v) == expected).then_some(())
    })
    .await;
    let label = browser
        .find(Locator::Id("selected-label"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(label, peer.label);

    // "Kill selected" kills it: dead in the network, drawn dead (or gone) on the page.
    click(&browser, "#kill-peer").await;
    wait_in_network(&network, "the selected peer to die", |g| {
        (g.stats.peers == peers && g.nodes.iter().all(|n| n.id != peer.id || !n.alive))
            .then_some(())
    })
    .await;
    let dead_or_gone = format!(
        "const g = document.querySelector(\"#graph g.node[data-id='{}']\"); \
         return g === null || g.classList.contains('dead');",
        peer.id
    );
    wait_in_page(&browser, "the killed peer drawn dead", &dead_or_gone, |v| {
        (v.as_bool() == Some(true)).then_some(())
    })
    .await;

    // The interval field changes every peer's shuffle interval.
    let interval = browser.find(Locator::Id("interval")).await.unwrap();
    interval.clear().await.unwrap();
    interval.send_keys("250").await.unwrap();
    click(&browser, "#set-interval").await;
    wait_in_network(&network, "the new interval", |g| {
        (g.settings.interval_ms == 250).then_some(())
    })
    .await;

    if let Some(path) = std::env::var_os("VIZ_SCREENSHOT") {
        let png = browser.screenshot().await.expect("a screenshot");
        std::fs::write(&path, png).unwrap();
    }
    browser.close().await.expect("the session closes");
}

/// Takes the README's screenshot: a larger network (`$VIZ_SCREENSHOT_PEERS`, default 30),
/// mixed, one peer selected, one killed. Writes `$VIZ_SCREENSHOT` (default: under `target/`).
/// Run it in release mode: a debug build's crypto is slow enough for many peers to time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a screenshot; run on purpose"]
async fn screenshot() {
    let Some((chromium, chromedriver)) = browser_programs("screenshot") else {
        return;
    };
    let peers = std::env::var("VIZ_SCREENSHOT_PEERS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(30);
    let (network, base) = start_viz(Options {
        peers,
        interval: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let scratch = TempDir::new("viz-screenshot");
    let driver = start_chromedriver(&chromedriver, &scratch.0).await;
    let browser = start_browser(&chromium, &driver, &scratch.0.join("profile")).await;
    browser.goto(&base).await.expect("the page loads");
    // Let the ring mix into a random-like overlay: every view full.
    let view_size = network.settings().view_size;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !network
        .graph()
        .nodes
        .iter()
        .all(|n| n.view_len == view_size)
    {
        assert!(Instant::now() < deadline, "views not full within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.set_window_size(1400, 1000).await.unwrap();
    let id = network.graph().nodes[3].id.clone();
    click(&browser, &format!("#graph g.node[data-id='{id}'] circle")).await;
    // Kill one peer so that dead links show, and let the layout settle a little.
    let victim = network.graph().nodes[7].id.clone();
    network.kill_peer(&victim.parse().unwrap()).await.unwrap();
    wait_in_page(
        &browser,
        "a dead link drawn",
        "return document.querySelectorAll('#graph path.edge.dead').length;",
        |v| (v.as_u64()? > 0).then_some(()),
    )
    .await;
    // A few seconds of history in the shuffles-per-second sparkline.
    wait_in_page(
        &browser,
        "the sparkline",
        "return document.querySelector('#rate-spark polyline')\
         ?.getAttribute('points').split(' ').length ?? 0;",
        |v| (v.as_u64()? >= 6).then_some(()),
    )
    .await;
    let png = browser.screenshot().await.expect("a screenshot");
    let path = std::env::var_os("VIZ_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("viz.png"));
    std::fs::write(&path, png).unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "screenshot written to {}",
        path.display()
    );
    browser.close().await.expect("the session closes");
}
