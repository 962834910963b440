//! One running `latchkey serve`: the real binary on `127.0.0.1:0` with a database in
//! a temporary directory. The announced `listening on ADDR` line gives the address;
//! stdout and stderr are drained into one log on background threads. Dropping the
//! server sends SIGTERM and asserts exit status 0; a failing test prints the log.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// How long a server may take to announce its address or to exit after a signal.
const PROCESS_DEADLINE: Duration = Duration::from_secs(20);

/// What to start: flags, environment and where the database lives.
pub struct ServerBuilder {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    dir: Option<PathBuf>,
    serve_word: bool,
    listen_flag: bool,
    db_flag: bool,
}

impl ServerBuilder {
    /// Adds flags (`["--access-ttl", "120"]`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Sets an environment variable for the server (the process environment of the
    /// test binary is never touched).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Keeps the database in `dir` (owned by the test) instead of a fresh one, so a
    /// second server can be started on the same file.
    pub fn db_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Starts `latchkey FLAGS` instead of `latchkey serve FLAGS`.
    pub fn without_serve_word(mut self) -> Self {
        self.serve_word = false;
        self
    }

    /// Leaves `--listen` out (the test passes the address some other way).
    pub fn without_listen_flag(mut self) -> Self {
        self.listen_flag = false;
        self
    }

    /// Leaves `--db` out (the test passes the path some other way).
    pub fn without_db_flag(mut self) -> Self {
        self.db_flag = false;
        self
    }

    /// Spawns the server and waits for its `listening on ADDR` line.
    pub fn start(self) -> Server {
        let (temp, dir) = match self.dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        let db = dir.join("latchkey.db");
        let mut cmd = Command::new(BIN);
        if self.serve_word {
            cmd.arg("serve");
        }
        if self.listen_flag {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if self.db_flag {
            cmd.arg("--db").arg(&db);
        }
        cmd.args(&self.args);
        for (key, _) in std::env::vars() {
            if key.starts_with("LATCHKEY_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("RUST_LOG", "debug");
        for (key, value) in &self.envs {
            cmd.env(key, value);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn latchkey");

        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let readers = vec![
            drain(stdout, "stdout", Arc::clone(&log), Some(addr_tx)),
            drain(stderr, "stderr", Arc::clone(&log), None),
        ];
        let mut server = Server {
            child: Some(child),
            addr: "127.0.0.1:0".parse().unwrap(),
            db,
            log,
            readers,
            _temp: temp,
        };
        match addr_rx.recv_timeout(PROCESS_DEADLINE) {
            Ok(addr) => server.addr = addr,
            Err(_) => {
                let status = server.terminate();
                panic!(
                    "latchkey did not announce `listening on ADDR` (exit: {status:?})\n{}",
                    server.log()
                );
            }
        }
        server
    }
}

/// A running server. See the module doc for its life cycle.
pub struct Server {
    child: Option<Child>,
    /// The address from the `listening on ADDR` line.
    pub addr: SocketAddr,
    /// The database file (`latchkey.db` in the server's directory).
    pub db: PathBuf,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    _temp: Option<TempDir>,
}

impl Server {
    /// A builder for a server with extra flags or environment.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            args: Vec::new(),
            envs: Vec::new(),
            dir: None,
            serve_word: true,
            listen_flag: true,
            db_flag: true,
        }
    }

    /// A server with the default configuration.
    pub fn start() -> Server {
        Server::builder().start()
    }

    /// A server with these extra flags.
    pub fn with_args(args: &[&str]) -> Server {
        Server::builder().args(args).start()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server still running").id()
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Resident memory of the server process in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS line");
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("VmRSS value")
    }

    /// Sends `signal` ("TERM", "INT") to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Sends `signal`, waits for the exit and returns its status and the full log.
    pub fn stop_with(mut self, signal: &str) -> (ExitStatus, String) {
        self.signal(signal);
        let status = self.wait_exit();
        (status, self.log())
    }

    /// Waits for the exit after a signal the test already sent.
    pub fn stop_after_signal(mut self) -> (ExitStatus, String) {
        let status = self.wait_exit();
        (status, self.log())
    }

    /// Stops the server with SIGTERM, asserts exit status 0 and returns the full log.
    pub fn stop(self) -> String {
        let (status, log) = self.stop_with("TERM");
        assert_eq!(
            status.code(),
            Some(0),
            "latchkey did not exit 0 on SIGTERM: {status:?}\n{log}"
        );
        log
    }

    /// Waits for the exit (killing the process after the deadline) and joins the
    /// log readers, so the log is complete.
    fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server still running");
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let status = child.wait().expect("wait");
                self.join_readers();
                panic!(
                    "latchkey did not exit within {PROCESS_DEADLINE:?} of a signal ({status:?})\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        self.join_readers();
        status
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Ends the process however it can (used while already panicking).
    fn terminate(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                self.join_readers();
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let status = child.wait().ok();
        self.child = None;
        self.join_readers();
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_none() {
            if thread::panicking() {
                eprintln!("----- latchkey log -----\n{}", self.log());
            }
            return;
        }
        if thread::panicking() {
            let status = self.terminate();
            eprintln!("----- latchkey log (exit {status:?}) -----\n{}", self.log());
            return;
        }
        self.signal("TERM");
        let status = self.wait_exit();
        assert_eq!(
            status.code(),
            Some(0),
            "latchkey did not exit 0 on SIGTERM: {status:?}\n{}",
            self.log()
        );
    }
}

/// Copies one output stream into the log, line by line; the first
/// `listening on ADDR` line of stdout is sent to `announce`.
fn drain(
    stream: impl Read + Send + 'static,
    name: &'static str,
    log: Arc<Mutex<String>>,
    mut announce: Option<mpsc::Sender<SocketAddr>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            log.lock()
                .unwrap()
                .push_str(&format!("[{name}] {}\n", text.trim_end()));
            if let Some(addr) = text.trim().strip_prefix("listening on ") {
                let addr = addr.trim().trim_start_matches("http://");
                if let (Some(tx), Ok(addr)) = (announce.as_ref(), addr.parse()) {
                    let _ = tx.send(addr);
                    announce = None;
                }
            }
        }
    })
}

/// Polls `check` every 20 ms until it returns true or `within` has passed; returns
/// whether it became true.
pub fn poll_until(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
