//! One connection's life on its own thread: wait for a request (idle timeout), read
//! its head, have its body limit decided, read its body (request timeout), run the
//! handler on the worker pool, write the response, and again while keep-alive holds.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::deadline::Deadlined;
use super::head::{BodyFraming, Head};
use super::input::{Failure, Input, Reservation};
use super::output::{self, Reply};
use super::{Refusal, RequestLine, Shared, refusal_response};

/// After answering and before closing, how long and how much we still read from a
/// client that keeps sending, so our answer isn't destroyed by a reset (a close with
/// unread input resets the connection).
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

/// Removes the connection from the registry however its thread ends.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.remove(self.id);
    }
}

/// What the connection does after an exchange.
enum Next {
    KeepAlive,
    /// Close now: the peer is gone or the socket failed.
    Close,
    /// Close after letting the client's remaining input drain.
    CloseAfterAnswer,
}

pub(super) fn run(shared: &Shared, id: u64, stream: Arc<TcpStream>) {
    let _registered = Registered { shared, id };
    let Ok(peer) = stream.peer_addr() else { return };
    // Heads and small bodies leave in one write; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let mut input = Input::new(Arc::clone(&stream));
    loop {
        if !input.has_buffered() {
            if !shared.set_idle(id, true) {
                break;
            }
            let started = input.wait_for_request(shared.options.idle_timeout);
            if !shared.set_idle(id, false) || !started {
                break;
            }
        }
        match exchange(shared, &mut input, &stream, peer) {
            Next::KeepAlive => {}
            Next::Close => break,
            Next::CloseAfterAnswer => {
                linger(&stream);
                break;
            }
        }
    }
}

/// Reads one request, has it handled and writes the answer.
fn exchange(shared: &Shared, input: &mut Input, stream: &TcpStream, peer: SocketAddr) -> Next {
    let options = &shared.options;
    let deadline = Instant::now() + options.request_timeout;
    let mut head = match input.read_head(deadline, options.max_body_bytes) {
        Ok(head) => head,
        Err((failure, line)) => {
            let line = line
                .as_ref()
                .map(|(method, target)| RequestLine { method, target });
            return fail(shared, stream, failure, line);
        }
    };
    let limit = match admit(shared, &head, peer) {
        Ok(limit) => limit,
        Err(Admission::Answer(response)) => return answer_and_close(shared, stream, response),
        Err(Admission::Refuse(refusal, why)) => {
            return fail(shared, stream, Failure::Refuse(refusal, why), head.line());
        }
    };
    // Only now: a client that waits for 100 Continue sends nothing we refuse.
    if head.expect_continue && !input.holds_body(head.framing) {
        let mut out = Deadlined { stream, deadline };
        if out.write_all(output::CONTINUE).is_err() {
            return Next::Close;
        }
    }
    let mut reserved = Reservation::new(&shared.body_budget);
    let body = match input.read_body(head.framing, limit, deadline, &mut reserved) {
        Ok(body) => body,
        Err(failure) => return fail(shared, stream, failure, head.line()),
    };
    head.set_body_length(body.len());
    let (head_only, http10, keep_alive) = (head.method == "HEAD", head.http10, head.keep_alive);
    let (method, target) = (head.method.clone(), head.target.clone());
    let request =
        rouille::Request::fake_http_from(peer, head.method, head.target, head.headers, body);
    let service = Arc::clone(&shared.service);
    let handled = shared.workers.call(move || service.handle(&request));
    // The response may be written until this deadline, a slow reader notwithstanding.
    let write_deadline = Instant::now() + options.request_timeout;
    let Ok(response) = handled else {
        log::warn!("{peer}: request handler failed");
        let line = RequestLine {
            method: &method,
            target: &target,
        };
        return refuse(shared, stream, Refusal::Internal, Some(line));
    };
    // Checked after the handler: stopping may have begun while it ran.
    let reply = Reply {
        head_only,
        http10,
        keep_alive: keep_alive && !shared.stopper.is_stopped(),
    };
    match output::write_response(stream, response, reply, write_deadline) {
        Ok(true) => Next::KeepAlive,
        Ok(_) => Next::CloseAfterAnswer,
        Err(error) => {
            log::debug!("{peer}: writing the response failed: {error}");
            Next::Close
        }
    }
}

/// Why a request is not read past its head.
enum Admission {
    /// The service's own answer (a 401 for an upload without valid credentials, say).
    Answer(rouille::Response),
    Refuse(Refusal, &'static str),
}

/// The body limit of this request. Within `Options::body_bytes` it is decided
/// here; a larger or chunked body is the service's to allow (by route and
/// credentials), so an unauthenticated client never gets to send a large one.
fn admit(shared: &Shared, head: &Head, peer: SocketAddr) -> Result<usize, Admission> {
    let options = &shared.options;
    match head.framing {
        BodyFraming::Empty => return Ok(options.body_bytes),
        BodyFraming::Length(length) if length <= options.body_bytes => {
            return Ok(options.body_bytes);
        }
        BodyFraming::Length(_) | BodyFraming::Chunked => {}
    }
    let request = rouille::Request::fake_http_from(
        peer,
        head.method.clone(),
        head.target.clone(),
        head.headers.clone(),
        Vec::new(),
    );
    let service = Arc::clone(&shared.service);
    // On a worker: admitting may verify a token against the database.
    let limit = match shared.workers.call(move || service.admit(&request)) {
        Ok(Ok(limit)) => limit.min(options.max_body_bytes),
        Ok(Err(response)) => return Err(Admission::Answer(response)),
        Err(()) => {
            return Err(Admission::Refuse(
                Refusal::Internal,
                "admitting the request failed",
            ));
        }
    };
    match head.framing {
        BodyFraming::Length(length) if length > limit => Err(Admission::Refuse(
            Refusal::PayloadTooLarge,
            "Content-Length over this request's body limit",
        )),
        _ => Ok(limit),
    }
}

/// Answers a refusal made while reading the request, or just closes.
fn fail(
    shared: &Shared,
    stream: &TcpStream,
    failure: Failure,
    line: Option<RequestLine<'_>>,
) -> Next {
    let Failure::Refuse(refusal, why) = failure else {
        return Next::Close;
    };
    // Only our fixed reason: request data (tokens, say) never reaches the log.
    log::debug!("refused with {refusal:?}: {why}");
    refuse(shared, stream, refusal, line)
}

/// Writes the service's answer to `refusal` and closes.
fn refuse(
    shared: &Shared,
    stream: &TcpStream,
    refusal: Refusal,
    line: Option<RequestLine<'_>>,
) -> Next {
    match refusal_response(shared.service.as_ref(), refusal, line) {
        Some(response) => answer_and_close(shared, stream, response),
        None => Next::Close,
    }
}

fn answer_and_close(shared: &Shared, stream: &TcpStream, response: rouille::Response) -> Next {
    let deadline = Instant::now() + shared.options.request_timeout;
    match output::write_response(stream, response, Reply::CLOSE, deadline) {
        Ok(_) => Next::CloseAfterAnswer,
        Err(_) => Next::Close,
    }
}

/// Half-closes, then reads and drops what the client still sends, bounded in time and
/// bytes, so that closing doesn't reset the connection under our answer.
fn linger(stream: &TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let mut reader = Deadlined {
        stream,
        deadline: Instant::now() + LINGER_TIME,
    };
    let mut discard = [0; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match reader.read(&mut discard) {
            Ok(0) | Err(_) => return,
            Ok(count) => drained += count,
        }
    }
}
