//! Emulated hosts for the examples' tests (feature `testing`, Linux): Linux network namespaces,
//! each with its own address (10.77.0.0/16) on a bridge the test creates, removed when the
//! [`Network`] is dropped, also when the test fails; leftovers of a run that was killed are
//! removed by the next one. Needs root and `ip` (iproute2); [`network_or_skip`] says loudly why
//! a test skips without them, unless `CYCLON_REQUIRE_NETNS=1` (CI as root) makes that a failure.

use std::{
    collections::HashSet,
    path::Path,
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

/// Distinguishes the networks of one test process.
static NEXT_RUN: AtomicU32 = AtomicU32::new(0);

/// Runs `ip` with `args`; `Err` with its stderr if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Hosts on one or two bridges, each host a network namespace with a veth pair: `eth0` inside,
/// its other end on a bridge. Everything it made is removed on drop.
pub struct Network {
    /// Unique per run: `cy<pid>x<n>`, so names fit the 15 characters of an interface name.
    prefix: String,
    /// The third byte of the hosts' addresses, 10.77.`subnet`.host.
    subnet: u8,
    hosts: usize,
    /// Hosts whose link is on the second bridge now.
    cut_off: HashSet<usize>,
}

impl Network {
    /// The network, or why it cannot be made here.
    pub fn new() -> Result<Self, String> {
        let run = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("cy{}x{run}", std::process::id());
        remove_leftovers();
        let network = Self {
            subnet: (std::process::id() % 200) as u8 + 1,
            prefix,
            hosts: 0,
            cut_off: HashSet::new(),
        };
        for bridge in [network.bridge(false), network.bridge(true)] {
            ip(&["link", "add", &bridge, "type", "bridge"])?;
            ip(&["link", "set", &bridge, "up"])?;
        }
        Ok(network)
    }

    fn bridge(&self, second: bool) -> String {
        format!("{}{}", self.prefix, if second { "bb" } else { "ba" })
    }

    pub fn namespace(&self, host: usize) -> String {
        format!("{}n{host}", self.prefix)
    }

    fn veth(&self, host: usize) -> String {
        format!("{}h{host}", self.prefix)
    }

    pub fn address(&self, host: usize) -> String {
        format!("10.77.{}.{}", self.subnet, host + 1)
    }

    /// Adds a host on the first bridge; returns its index.
    pub fn add_host(&mut self) -> usize {
        let host = self.hosts;
        assert!(host < 250, "too many hosts for one /24");
        self.hosts += 1;
        let (ns, veth) = (self.namespace(host), self.veth(host));
        let inner = format!("{}p{host}", self.prefix);
        let address = format!("{}/16", self.address(host));
        let steps: [&[&str]; 9] = [
            &["netns", "add", &ns],
            &["link", "add", &veth, "type", "veth", "peer", "name", &inner],
            &["link", "set", &inner, "netns", &ns],
            &["-n", &ns, "link", "set", &inner, "name", "eth0"],
            &["-n", &ns, "addr", "add", &address, "dev", "eth0"],
            &["-n", &ns, "link", "set", "eth0", "up"],
            &["-n", &ns, "link", "set", "lo", "up"],
            &["link", "set", &veth, "master", &self.bridge(false)],
            &["link", "set", &veth, "up"],
        ];
        for step in steps {
            ip(step).unwrap_or_else(|e| panic!("cannot set up host {host}: {e}"));
        }
        host
    }

    /// A command that runs `program` inside `host`'s namespace.
    pub fn exec(&self, host: usize, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.namespace(host), program]);
        command
    }

    /// A command that runs `program` with `args` inside `host`'s namespace and waits for it
    /// (e.g. `ss` to count the host's connections); its stdout.
    pub fn run_in(&self, host: usize, program: &str, args: &[&str]) -> String {
        self.exec(host, program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Cuts `hosts` off the others: their links move to the second bridge.
    pub fn partition(&mut self, hosts: impl IntoIterator<Item = usize>) {
        for host in hosts {
            self.attach(host, true);
            self.cut_off.insert(host);
        }
    }

    /// Moves every link back to the first bridge.
    pub fn heal(&mut self) {
        for host in std::mem::take(&mut self.cut_off) {
            self.attach(host, false);
        }
    }

    /// Puts `host`'s link on the first or the `second` bridge.
    fn attach(&self, host: usize, second: bool) {
        let (veth, bridge) = (self.veth(host), self.bridge(second));
        ip(&["link", "set", &veth, "master", &bridge]).unwrap();
    }

    /// Names of the namespaces and links of this network that still exist.
    /// The prefix of every name this network gives (unique per run).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn remaining(&self) -> Vec<String> {
        existing_names()
            .into_iter()
            .filter(|name| name.starts_with(&self.prefix))
            .collect()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in 0..self.hosts {
            // Deleting a namespace deletes its end of the veth pair, and so the pair.
            let _ = ip(&["netns", "del", &self.namespace(host)]);
            let _ = ip(&["link", "del", &self.veth(host)]);
        }
        for second in [false, true] {
            let _ = ip(&["link", "del", &self.bridge(second)]);
        }
    }
}

/// Names of all network namespaces and links.
pub fn existing_names() -> Vec<String> {
    let run = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    // `ip netns list` lines start with the name; `ip -o link show` lines with the index
    // ("3:"), then the name ("cy1x0h2@if5:").
    let mut names: Vec<String> = run(&["netns", "list"])
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.extend(run(&["-o", "link", "show"]).lines().filter_map(|line| {
        let name = line.split_whitespace().nth(1)?.trim_end_matches(':');
        Some(name.split('@').next().unwrap_or(name).to_owned())
    }));
    names
}

/// Removes the namespaces and links of earlier runs whose process is gone (a run killed before
/// its guard could clean up).
fn remove_leftovers() {
    for name in existing_names() {
        let Some(pid) = name
            .strip_prefix("cy")
            .and_then(|rest| rest.split_once('x'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if ip(&["netns", "del", &name]).is_err() {
            let _ = ip(&["link", "del", &name]);
        }
    }
}

/// The network, or `None` after saying loudly why this test is skipped. With
/// `CYCLON_REQUIRE_NETNS=1`, failing to make it fails the test instead.
pub fn network_or_skip(test: &str) -> Option<Network> {
    let required = std::env::var("CYCLON_REQUIRE_NETNS").is_ok_and(|v| v == "1");
    match Network::new() {
        Ok(network) => Some(network),
        Err(error) if required => {
            panic!("{test}: cannot create network namespaces ({error}) but CYCLON_REQUIRE_NETNS=1")
        }
        Err(error) => {
            eprintln!(
                "SKIPPED {test}: cannot create network namespaces here ({error}); it needs root \
                 and iproute2. Set CYCLON_REQUIRE_NETNS=1 to make this a failure."
            );
            None
        }
    }
}
