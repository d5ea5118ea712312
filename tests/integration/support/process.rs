//! The real `invent-proxy` binary, run as a child process with a config file.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::binary;

/// A running `invent-proxy run` process and everything it has logged.
pub struct ProxyProcess {
    child: Child,
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    _config: TempPath,
}

impl ProxyProcess {
    /// Starts the binary with `yaml` as its config file and waits until it serves.
    pub fn start(yaml: &str, envs: &[(&str, &str)]) -> Self {
        Self::start_with_args(yaml, envs, &[])
    }

    /// [`ProxyProcess::start`] with more arguments after `run --config FILE`.
    pub fn start_with_args(yaml: &str, envs: &[(&str, &str)], args: &[&str]) -> Self {
        Self::launch(Command::new(binary()), yaml, envs, args)
    }

    /// [`ProxyProcess::start`] with at most `files` open file descriptors (util-linux's
    /// `prlimit` sets the limit, then runs the binary in its place).
    pub fn start_with_fd_limit(yaml: &str, files: u32) -> Self {
        let mut prlimit = Command::new("prlimit");
        prlimit.arg(format!("--nofile={files}:{files}")).arg("--").arg(binary());
        Self::launch(prlimit, yaml, &[], &[])
    }

    fn launch(mut command: Command, yaml: &str, envs: &[(&str, &str)], args: &[&str]) -> Self {
        let config = TempPath::with_contents(yaml);
        let mut child = command
            .args(["run", "--config", config.path()])
            .args(args)
            // The config's `log.level`, unless a test sets `RUST_LOG` itself.
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let mut process = ProxyProcess { child, addr: "0.0.0.0:0".parse().unwrap(), logs, _config: config };
        let line = process.wait_for_log("invent-proxy is serving");
        // `listen=ADDR` in text logs, `"listen":"ADDR"` in JSON ones.
        let at = line.find("listen").unwrap() + "listen".len();
        let addr = line[at..].trim_start_matches(['=', '"', ':']).split(['"', ' ']).next().unwrap();
        process.addr = addr.parse().unwrap_or_else(|e| panic!("{e}: {line}"));
        process
    }

    /// Replaces the config file's contents (for a reload).
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(self._config.path(), yaml).unwrap();
    }

    /// Everything logged so far, one line each.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) for a log line containing `needle`.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the proxy exited ({status}) before logging {needle:?}:\n{}", self.logs().join("\n"));
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?}:\n{}", self.logs().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process's peak resident memory, from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Sends `signal` (e.g. "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-s", signal, &pid]).status().unwrap().success());
    }

    /// Waits (up to 20 s) for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the proxy did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary file, removed when dropped.
pub struct TempPath(std::path::PathBuf);

impl TempPath {
    pub fn with_contents(contents: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("invent-proxy-test-{}-{n}.yaml", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempPath(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
