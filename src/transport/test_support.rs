//! Helpers for the socket tests: a small test `Service`, a server started on
//! 127.0.0.1:0 and stopped on drop, and a minimal HTTP client that parses answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{Options, Refusal, RequestLine, Service, Stopper, serve};
use crate::transport::workers::{Workers, step_aside};

/// The test service. `/block` waits inside `step_aside` and `/wait` waits holding its
/// slot, both until `release()`.
#[derive(Default)]
pub struct TestService {
    pub waiting: AtomicUsize,
    released: Mutex<bool>,
    release_signal: Condvar,
}

impl TestService {
    pub fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.release_signal.notify_all();
    }

    fn wait_for_release(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let released = self.released.lock().unwrap();
        // Bounded, so a failing test can't hang the suite.
        let _ =
            self.release_signal
                .wait_timeout_while(released, Duration::from_secs(20), |released| !*released);
    }
}

impl Service for TestService {
    fn handle(&self, request: &rouille::Request) -> rouille::Response {
        let mut body = Vec::new();
        if let Some(mut data) = request.data() {
            data.read_to_end(&mut body).unwrap();
        }
        match request.raw_url() {
            "/echo" | "/big" => rouille::Response::from_data("application/octet-stream", body),
            "/info" => rouille::Response::text(format!(
                "{} {} length={:?}",
                request.method(),
                request.remote_addr().ip(),
                request.header("Content-Length")
            )),
            "/block" => {
                step_aside(|| self.wait_for_release());
                rouille::Response::text("unblocked")
            }
            "/wait" => {
                self.wait_for_release();
                rouille::Response::text("waited")
            }
            "/inject" => rouille::Response::text("ok")
                .with_additional_header("X-Safe", "yes")
                .with_additional_header("X-Evil", "a\r\nSet-Cookie: session=stolen")
                .with_additional_header("Set-Cookie\r\nX-Other", "b"),
            "/stream" => {
                let mut response = rouille::Response::text("");
                let data = std::io::Cursor::new(b"streamed body".to_vec());
                response.data = rouille::ResponseBody::from_reader(data);
                response
            }
            "/panic" => panic!("handler panicked on purpose"),
            _ => rouille::Response::text("hello"),
        }
    }

    fn admit(&self, request: &rouille::Request) -> Result<usize, rouille::Response> {
        match request.raw_url() {
            "/big" => Ok(5000),
            "/deny" => Err(rouille::Response::text("denied").with_status_code(401)),
            "/panic" => panic!("admission panicked on purpose"),
            _ => Ok(1000),
        }
    }

    fn refuse(&self, refusal: Refusal, line: Option<RequestLine<'_>>) -> rouille::Response {
        let status = match refusal {
            Refusal::BadRequest => 400,
            Refusal::HeadersTooLarge => 431,
            Refusal::PayloadTooLarge => 413,
            Refusal::RequestTimeout => 408,
            Refusal::Overloaded => 503,
            Refusal::Internal => 500,
        };
        let target = line.map_or("-", |line| line.target);
        rouille::Response::text(format!("{refusal:?}"))
            .with_status_code(status)
            .with_additional_header("X-Target", target.to_owned())
    }
}

pub fn options() -> Options {
    Options {
        idle_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(5),
        max_connections: 100,
        body_bytes: 1000,
        max_body_bytes: 10_000,
    }
}

/// A running server; dropping it stops the server and the workers.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stopper: Stopper,
    pub service: Arc<TestService>,
    pub workers: Arc<Workers>,
    pub serving: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn start(options: Options) -> TestServer {
    start_with(options, Workers::new(4, 4))
}

pub fn start_with(options: Options, workers: Arc<Workers>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stopper = Stopper::new(&listener).unwrap();
    let service = Arc::new(TestService::default());
    let serving = {
        let (workers, service, stopper) = (workers.clone(), service.clone(), stopper.clone());
        thread::spawn(move || serve(listener, options, workers, service, stopper))
    };
    TestServer {
        addr,
        stopper,
        service,
        workers,
        serving: Some(serving),
    }
}

impl TestServer {
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Stops the server and waits for `serve` to return.
    pub fn stop(&mut self) {
        self.service.release();
        self.stopper.stop();
        if let Some(serving) = self.serving.take() {
            serving.join().unwrap().unwrap();
        }
        self.workers.shutdown();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop();
        } else {
            self.service.release();
            self.stopper.stop();
        }
    }
}

/// A parsed answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn closes(&self) -> bool {
        self.header("Connection") == Some("close")
    }
}

pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.reader.get_mut().write_all(bytes.as_ref()).unwrap();
    }

    pub fn get(&mut self, path: &str) -> Answer {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
        self.answer(false)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        match line.strip_suffix("\r\n") {
            Some(line) => Ok(line.to_owned()),
            None => Err(std::io::Error::other(format!("unterminated line {line:?}"))),
        }
    }

    /// Reads one answer; `head_only` for answers to HEAD.
    pub fn answer(&mut self, head_only: bool) -> Answer {
        self.try_answer(head_only).expect("an answer")
    }

    pub fn try_answer(&mut self, head_only: bool) -> std::io::Result<Answer> {
        let status_line = self.line()?;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(": ").expect("header field");
            headers.push((name.to_owned(), value.to_owned()));
        }
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 100 || status == 204 {
            return Ok(answer);
        }
        if let Some(length) = answer.header("Content-Length") {
            let mut body = vec![0; length.parse().unwrap()];
            self.reader.read_exact(&mut body)?;
            answer.body = body;
        } else if answer.header("Transfer-Encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line()?, 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                answer.body.extend_from_slice(&chunk[..size]);
            }
        } else {
            self.reader.read_to_end(&mut answer.body)?;
        }
        Ok(answer)
    }

    /// True when the server closed the connection (end of stream or reset).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0];
        match self.reader.read(&mut byte) {
            Ok(count) => count == 0,
            Err(error) => !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// Polls `done` every few milliseconds until it holds; false if `limit` passes first.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// This process's resident memory in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
