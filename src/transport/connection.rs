//! One connection's life on its own thread: wait for a request (idle timeout), read
//! it (request timeout), run the handler on the worker pool, write the response, and
//! again while keep-alive holds.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use super::deadline::Deadlined;
use super::input::{Failure, Input, Reservation};
use super::output::{self, Reply};

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
        Err(failure) => return fail(shared, stream, peer, failure),
    };
    if head.expect_continue && !input.holds_body(head.framing) {
        let mut out = Deadlined { stream, deadline };
        if out.write_all(output::CONTINUE).is_err() {
            return Next::Close;
        }
    }
    let mut reserved = Reservation::new(&shared.body_budget);
    let body = match input.read_body(
        head.framing,
        options.max_body_bytes,
        deadline,
        &mut reserved,
    ) {
        Ok(body) => body,
        Err(failure) => return fail(shared, stream, peer, failure),
    };
    head.set_body_length(body.len());
    let (head_only, http10, keep_alive) = (head.method == "HEAD", head.http10, head.keep_alive);
    let request =
        rouille::Request::fake_http_from(peer, head.method, head.target, head.headers, body);
    let service = Arc::clone(&shared.service);
    let handled = shared.workers.call(move || service.handle(&request));
    // The response may be written until this deadline, a slow reader notwithstanding.
    let write_deadline = Instant::now() + options.request_timeout;
    let Ok(response) = handled else {
        log::warn!("{peer}: request handler failed; answering 500");
        let _ = output::write_response(stream, internal_error(), Reply::CLOSE, write_deadline);
        return Next::CloseAfterAnswer;
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

/// Answers a refusal made while reading the request, or just closes.
fn fail(shared: &Shared, stream: &TcpStream, peer: SocketAddr, failure: Failure) -> Next {
    let Failure::Refuse(refusal, why) = failure else {
        return Next::Close;
    };
    // Only our fixed reason: request data (tokens, say) never reaches the log.
    log::debug!("{peer}: refused with {refusal:?}: {why}");
    let response = shared.service.refuse(refusal);
    let deadline = Instant::now() + shared.options.request_timeout;
    match output::write_response(stream, response, Reply::CLOSE, deadline) {
        Ok(_) => Next::CloseAfterAnswer,
        Err(_) => Next::Close,
    }
}

/// The answer when a handler panicked or the pool is gone. The `Service` builds every
/// other error body; this one can't be its, as its code may be what failed.
fn internal_error() -> rouille::Response {
    let body = r#"{"code":"internal_error","detail":"The server could not complete the request."}"#;
    rouille::Response::from_data("application/json", body).with_status_code(500)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_error_is_json_without_internals() {
        let response = internal_error();
        assert_eq!(response.status_code, 500);
        let (mut reader, _) = response.data.into_reader_and_size();
        let mut body = String::new();
        reader.read_to_string(&mut body).unwrap();
        assert!(body.contains("\"code\":\"internal_error\""));
    }
}
