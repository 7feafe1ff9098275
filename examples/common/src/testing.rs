//! Helpers for the examples' process tests (feature `testing`): spawn a program with piped
//! stdio, collect its output lines, wait for conditions on that output with deadlines, and kill
//! whatever is left when a test ends (also when it fails). A test gets its program from Cargo:
//! `env!("CARGO_BIN_EXE_<name>")`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

/// What one process printed so far.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    /// Streams (stdout, stderr) that reached their end.
    pub closed: usize,
}

#[derive(Default)]
struct Shared {
    outputs: Mutex<Vec<Output>>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Output>> {
        self.outputs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Process {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    status: Option<ExitStatus>,
}

/// Processes started by one test. Dropping the group kills those still running.
#[derive(Default)]
pub struct Group {
    shared: Arc<Shared>,
    processes: Vec<Process>,
}

impl Group {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `command` with piped stdio (and no `RUST_LOG`, so it logs at its default
    /// level). Returns its index in the group.
    pub fn spawn(&mut self, name: &str, mut command: Command) -> usize {
        let mut child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let index = self.processes.len();
        self.shared.lock().push(Output::default());
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect(Arc::clone(&self.shared), index, stdout, |o| &mut o.stdout);
        collect(Arc::clone(&self.shared), index, stderr, |o| &mut o.stderr);
        let stdin = child.stdin.take();
        self.processes.push(Process {
            name: name.to_string(),
            child,
            stdin,
            status: None,
        });
        index
    }

    pub fn pid(&self, index: usize) -> u32 {
        self.processes[index].child.id()
    }

    /// Writes one line to the process's stdin.
    pub fn write_line(&mut self, index: usize, line: &str) {
        let process = &mut self.processes[index];
        let stdin = process.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot write to {}: {e}", process.name));
    }

    /// Closes the process's stdin (end of input).
    pub fn close_stdin(&mut self, index: usize) {
        self.processes[index].stdin = None;
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self, index: usize) {
        let process = &mut self.processes[index];
        let _ = process.child.kill();
        process.status = process.child.wait().ok();
    }

    /// Sends `signal` (a name such as `TERM` or `INT`) to the process, with `kill(1)`.
    pub fn signal(&mut self, index: usize, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid(index).to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits until the process exits, at most `timeout`.
    pub fn wait_exit(&mut self, index: usize, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let process = &mut self.processes[index];
        loop {
            if let Some(status) = process.child.try_wait().expect("try_wait") {
                process.status = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                process.name
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A copy of what every process printed so far.
    pub fn with_outputs<T>(&self, f: impl FnOnce(&[Output]) -> T) -> T {
        f(&self.shared.lock())
    }

    /// Waits until `condition` holds for the outputs, re-checking whenever a process prints a
    /// line. Panics after `timeout`, with `what` and the tail of every process's output.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&[Output]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut outputs = self.shared.lock();
        loop {
            if let Some(value) = condition(&outputs) {
                return value;
            }
            let now = Instant::now();
            if now >= deadline {
                let report = self.report(&outputs);
                drop(outputs);
                panic!("timed out after {timeout:?} waiting for {what}\n{report}");
            }
            outputs = self
                .shared
                .changed
                .wait_timeout(outputs, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The last lines each process printed, for failure messages.
    fn report(&self, outputs: &[Output]) -> String {
        let mut report = String::new();
        for (process, output) in self.processes.iter().zip(outputs) {
            let tail = |lines: &[String]| lines[lines.len().saturating_sub(8)..].join("\n    ");
            report.push_str(&format!(
                "--- {} (pid {}): {} stdout lines, last:\n    {}\n  stderr, last:\n    {}\n",
                process.name,
                process.child.id(),
                output.stdout.len(),
                tail(&output.stdout),
                tail(&output.stderr),
            ));
        }
        report
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for process in &mut self.processes {
            if process.status.is_none() {
                let _ = process.child.kill();
                let _ = process.child.wait();
            }
        }
    }
}

/// Reads `stream` line by line into the process's output, waking up waiters on each line.
fn collect(
    shared: Arc<Shared>,
    index: usize,
    stream: impl Read + Send + 'static,
    field: fn(&mut Output) -> &mut Vec<String>,
) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            field(&mut shared.lock()[index]).push(line);
            shared.changed.notify_all();
        }
        shared.lock()[index].closed += 1;
        shared.changed.notify_all();
    });
}

/// Runs `command` to its end (at most `timeout`) with stdin closed; returns its status,
/// stdout and stderr.
pub fn run_to_exit(command: Command, timeout: Duration) -> (ExitStatus, String, String) {
    let mut group = Group::new();
    let index = group.spawn("command", command);
    group.processes[index].stdin = None; // closes it
    let (stdout, stderr) = group.wait_until("the output to end", timeout, |outputs| {
        let output = &outputs[index];
        (output.closed == 2).then(|| (output.stdout.join("\n"), output.stderr.join("\n")))
    });
    let status = group.wait_exit(index, timeout);
    (status, stdout, stderr)
}

/// Runs `program` with each set of bad flags in `cases`: each must exit with status 2,
/// print nothing on stdout and one line on stderr starting with `error: `, not a panic.
pub fn assert_bad_flags_rejected(program: &str, cases: &[&[&str]]) {
    for args in cases {
        let mut command = Command::new(program);
        command.args(*args);
        let (status, stdout, stderr) = run_to_exit(command, Duration::from_secs(10));
        assert!(!status.success(), "{args:?} succeeded");
        assert_eq!(
            status.code(),
            Some(2),
            "{args:?}: {status}, stderr: {stderr}"
        );
        assert!(stdout.is_empty(), "{args:?} printed on stdout: {stdout}");
        let message = stderr.trim();
        assert_eq!(
            message.lines().count(),
            1,
            "{args:?}: not one line: {message}"
        );
        assert!(message.starts_with("error: "), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{args:?}: {message}");
    }
}

/// Runs `program` with `--help`: it must succeed and mention each of `words`.
pub fn assert_help_mentions(program: &str, words: &[&str]) {
    let mut command = Command::new(program);
    command.arg("--help");
    let (status, stdout, _) = run_to_exit(command, Duration::from_secs(10));
    assert!(status.success());
    for word in words {
        assert!(
            stdout.contains(word),
            "--help does not mention {word}:\n{stdout}"
        );
    }
}
