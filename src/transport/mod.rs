//! Our HTTP/1.1 server: accepting, reading, framing, timeouts and writing, on
//! `httparse`, feeding rouille's `Request`/`Response` to a [`Service`].
//!
//! Four accepting threads hand sockets to one admitting thread, which starts one
//! small-stack thread per open connection (capped by `max_connections`, refused
//! beyond it, never queued); that thread parses requests and writes responses.
//! Handlers run on the bounded [`Workers`] pool. This layer writes no response
//! of its own: every answer, its refusals and failures included, comes from the
//! [`Service`], so one place writes error bodies, default headers and the log.

mod connection;
mod deadline;
mod head;
mod input;
#[cfg(test)]
mod load_tests;
mod output;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
pub mod workers;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::locks::Unpoisoned;
use crate::transport::workers::Workers;

/// Stack of a connection thread. It only parses and writes (handlers run on the
/// workers), using a few KiB; the rest is headroom for logging and a panic message.
const CONNECTION_STACK_BYTES: usize = 256 * 1024;
/// How long `serve` waits, past the request and write timeouts, for handlers still
/// running at shutdown.
const HANDLER_GRACE: Duration = Duration::from_secs(10);
/// Threads blocked in `accept()` at once; see `serve`.
const ACCEPTORS: usize = 4;

/// Limits of the connection layer (from `--idle-timeout`, `--request-timeout`,
/// `--max-connections` and the body limits).
pub struct Options {
    /// Keep-alive connection with no request started: closed silently.
    pub idle_timeout: Duration,
    /// From a request's first byte until its head+body are complete, else 408 + close.
    /// Also bounds writing one response to a slow reader.
    pub request_timeout: Duration,
    /// Open connections; beyond it new ones are refused at once.
    pub max_connections: usize,
    /// The body any request may send. A request announcing more (or a chunked
    /// body) is first admitted by [`Service::admit`], which may allow it more.
    pub body_bytes: usize,
    /// The most any request may ever send, whatever `admit` says: a larger
    /// `Content-Length` is refused (413) before anything else happens.
    pub max_body_bytes: usize,
}

/// Why the connection layer has the [`Service`] answer a request it did not
/// hand over (or whose handler failed); the connection is closed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    HeadersTooLarge,
    PayloadTooLarge,
    RequestTimeout,
    Overloaded,
    /// The handler panicked past its own guard, or the worker pool is gone.
    Internal,
}

/// The request line of a refused request, once it was parsed (for the log).
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// As received: the query string is the service's to strip before logging.
    pub target: &'a str,
}

/// What the server serves: the router and its one error mapper.
pub trait Service: Send + Sync + 'static {
    /// Decides, from the head alone (`request` has an empty body), how many body
    /// bytes this request may send, or answers it at once without reading the
    /// body. Asked only for a chunked body or one over `Options::body_bytes`;
    /// runs on a worker.
    fn admit(&self, request: &rouille::Request) -> Result<usize, rouille::Response>;
    /// Answers a request. Runs on a worker (via `Workers::call`); it should catch
    /// its own panics, and a panic that escapes is answered with `Refusal::Internal`.
    fn handle(&self, request: &rouille::Request) -> rouille::Response;
    /// Answers a refusal of the connection layer (`line`: the request's, when its
    /// head was parsed). Runs on the connection thread, so it must be quick; if
    /// it panics, the connection is closed without an answer.
    fn refuse(&self, refusal: Refusal, line: Option<RequestLine<'_>>) -> rouille::Response;
}

/// Stops a running [`serve`]; cheap to clone and safe to use from any thread.
#[derive(Clone)]
pub struct Stopper {
    inner: Arc<StopperInner>,
}

struct StopperInner {
    stopped: AtomicBool,
    /// Where to connect to wake the blocking `accept()`.
    wake_addr: SocketAddr,
}

impl Stopper {
    pub fn new(listener: &TcpListener) -> io::Result<Stopper> {
        let mut wake_addr = listener.local_addr()?;
        // A wildcard address can't be connected to; its loopback twin reaches the listener.
        if wake_addr.ip().is_unspecified() {
            wake_addr.set_ip(match wake_addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        Ok(Stopper {
            inner: Arc::new(StopperInner {
                stopped: AtomicBool::new(false),
                wake_addr,
            }),
        })
    }

    /// Makes `serve` stop accepting and return (callable from a signal-watching thread).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Wakes one thread blocked in `accept()`.
    fn wake(&self) {
        // Failure means the listener is already gone, so nothing is left to wake.
        let _ = TcpStream::connect_timeout(&self.inner.wake_addr, Duration::from_secs(1));
    }

    fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }
}

/// The service's answer to a refusal; `None` (close without an answer) if it panicked.
fn refusal_response(
    service: &dyn Service,
    refusal: Refusal,
    line: Option<RequestLine<'_>>,
) -> Option<rouille::Response> {
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        service.refuse(refusal, line)
    }));
    if answer.is_err() {
        log::error!("answering a refusal ({refusal:?}) panicked; closing without an answer");
    }
    answer.ok()
}

/// State shared by the acceptor and the connection threads.
struct Shared {
    options: Options,
    workers: Arc<Workers>,
    service: Arc<dyn Service>,
    stopper: Stopper,
    connections: Mutex<Connections>,
    /// Signalled when a connection closes, for `serve`'s final wait.
    closed: Condvar,
    /// Bytes of request bodies that may be held at once, across connections.
    body_budget: AtomicUsize,
}

/// All request bodies being read or handled at once stay under this, so a
/// thousand clients each sending the largest upload cannot exhaust memory. A
/// body takes its share as its bytes arrive (announcing a size takes nothing);
/// one whose next bytes do not fit is refused with 503.
pub const BODY_BUDGET: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, OpenConnection>,
}

struct OpenConnection {
    /// The connection thread's own socket (shared, not duplicated: no extra descriptor),
    /// kept here so that stopping can shut down idle connections at once.
    stream: Arc<TcpStream>,
    idle: bool,
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections.lock().unpoisoned()
    }

    /// Marks a connection idle (waiting for a request) or busy. False once the server
    /// is stopping: an idle connection then closes, and one that just received bytes
    /// may already have been shut down, so it closes too.
    fn set_idle(&self, id: u64, idle: bool) -> bool {
        let mut connections = self.connections();
        if self.stopper.is_stopped() {
            return false;
        }
        if let Some(open) = connections.open.get_mut(&id) {
            open.idle = idle;
        }
        true
    }

    fn remove(&self, id: u64) {
        self.connections().open.remove(&id);
        self.closed.notify_all();
    }
}

/// Serves until `stopper.stop()`; then stops accepting, lets requests in flight finish and be
/// answered (with `Connection: close`), closes idle connections, and returns once all connection
/// threads are done (bounded by about request_timeout).
pub fn serve(
    listener: TcpListener,
    options: Options,
    workers: Arc<Workers>,
    service: Arc<dyn Service>,
    stopper: Stopper,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        options,
        workers,
        service,
        stopper,
        connections: Mutex::default(),
        closed: Condvar::new(),
        body_budget: AtomicUsize::new(BODY_BUDGET),
    });
    // Accepting only moves sockets to the admitting thread, which starts connection
    // threads, and several threads accept: the kernel's accept queue (128 with std's
    // listener) then drains at the pace of accept() even when one acceptor waits for
    // a CPU, so a burst doesn't overflow it (an overflow costs the client a SYN
    // retransmit: a second).
    let (accepted, admissions) = mpsc::sync_channel::<TcpStream>(1024);
    let admitting = {
        let shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("http-admit".to_owned())
            .spawn(move || admissions.iter().for_each(|stream| admit(&shared, stream)))?
    };
    let mut acceptors = Vec::with_capacity(ACCEPTORS);
    for _ in 1..ACCEPTORS {
        let (listener, accepted, stopper) = (
            listener.try_clone()?,
            accepted.clone(),
            shared.stopper.clone(),
        );
        let acceptor = thread::Builder::new()
            .name("http-accept".to_owned())
            .stack_size(64 * 1024)
            .spawn(move || accept_until_stopped(&listener, &accepted, &stopper));
        match acceptor {
            Ok(acceptor) => acceptors.push(acceptor),
            Err(error) => log::warn!("could not start an accepting thread: {error}"),
        }
    }
    accept_until_stopped(&listener, &accepted, &shared.stopper);
    for acceptor in acceptors {
        let _ = acceptor.join();
    }
    drop(listener);
    drop(accepted);
    let _ = admitting.join();
    drain(&shared);
    Ok(())
}

/// Accepts connections and hands them to the admitting thread until stopped.
fn accept_until_stopped(
    listener: &TcpListener,
    accepted: &mpsc::SyncSender<TcpStream>,
    stopper: &Stopper,
) {
    let mut failing = false;
    while !stopper.is_stopped() {
        match listener.accept() {
            Ok(_) if stopper.is_stopped() => break,
            Ok((stream, _)) => {
                failing = false;
                // The receiver lives until every sender is gone.
                let _ = accepted.send(stream);
            }
            Err(error) => match error.kind() {
                io::ErrorKind::Interrupted
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset => {}
                // Out of descriptors, say: back off instead of spinning, log once per streak.
                _ => {
                    if !failing {
                        log::warn!("accept failed: {error}");
                    }
                    failing = true;
                    thread::sleep(Duration::from_millis(50));
                }
            },
        }
    }
    // Each acceptor leaving wakes the next one still blocked in accept().
    stopper.wake();
}

/// Closes idle connections and waits for busy ones to finish their exchange.
fn drain(shared: &Shared) {
    let options = &shared.options;
    let limit = options.request_timeout * 2 + HANDLER_GRACE;
    let deadline = Instant::now() + limit;
    let mut connections = shared.connections();
    for open in connections.open.values().filter(|open| open.idle) {
        let _ = open.stream.shutdown(Shutdown::Both);
    }
    log::debug!("stopping: {} connections open", connections.open.len());
    while !connections.open.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::warn!(
                "stopped with {} connections still busy",
                connections.open.len()
            );
            return;
        }
        connections = shared.closed.wait_timeout(connections, left).unpoisoned().0;
    }
}

/// Registers a new connection and starts its thread, or refuses it when at the limit.
fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    let stream = Arc::new(stream);
    let id = {
        let mut connections = shared.connections();
        if connections.open.len() >= shared.options.max_connections {
            None
        } else {
            let id = connections.next_id;
            connections.next_id += 1;
            let open = OpenConnection {
                stream: Arc::clone(&stream),
                idle: false,
            };
            connections.open.insert(id, open);
            Some(id)
        }
    };
    let Some(id) = id else {
        log::debug!("refused a connection: at the connection limit");
        refuse_at_once(shared.service.as_ref(), &stream);
        return;
    };
    let (thread_shared, thread_stream) = (Arc::clone(shared), Arc::clone(&stream));
    let spawned = thread::Builder::new()
        .name("http-connection".to_owned())
        .stack_size(CONNECTION_STACK_BYTES)
        .spawn(move || connection::run(&thread_shared, id, thread_stream));
    if let Err(error) = spawned {
        log::warn!("could not start a connection thread: {error}");
        shared.remove(id);
        refuse_at_once(shared.service.as_ref(), &stream);
    }
}

/// Answers `Overloaded` without ever blocking the acceptor, then closes.
fn refuse_at_once(service: &dyn Service, stream: &TcpStream) {
    let Some(response) = refusal_response(service, Refusal::Overloaded, None) else {
        return;
    };
    let bytes = output::render_all(response, 16 * 1024);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut stream = stream;
    let _ = stream.write(&bytes);
    // Reading what already arrived avoids a reset that could destroy our answer
    // before the client reads it.
    let mut discard = [0; 4096];
    let _ = stream.read(&mut discard);
    let _ = stream.shutdown(Shutdown::Write);
}
