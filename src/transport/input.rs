//! Reading from a connection against deadlines: the buffer that keeps pipelined bytes,
//! the request head, and bodies framed by `Content-Length` or chunked coding.
//!
//! Timeouts are the socket's own (`set_read_timeout`, recomputed from the deadline
//! before every read), so a trickling client costs no extra thread.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::Refusal;
use super::deadline::Deadlined;
use super::head::{self, BodyFraming, Head, MAX_HEAD_BYTES};

/// How much one read asks the kernel for.
const READ_CHUNK: usize = 8 * 1024;
/// A chunk-size line (with extensions) or a trailer field longer than this is refused.
const MAX_LINE_BYTES: usize = 4 * 1024;

/// Why reading a request stopped.
#[derive(Debug)]
pub(super) enum Failure {
    /// Answer with this refusal, then close. The `&str` is the logged reason.
    Refuse(Refusal, &'static str),
    /// The peer went away or the socket failed: close without an answer.
    Closed,
}

impl From<head::Refused> for Failure {
    fn from((refusal, why): head::Refused) -> Failure {
        Failure::Refuse(refusal, why)
    }
}

fn timed_out() -> Failure {
    Failure::Refuse(
        Refusal::RequestTimeout,
        "request not complete within the timeout",
    )
}

/// The read side of a connection: the socket and the bytes read but not yet used.
pub(super) struct Input {
    stream: Arc<TcpStream>,
    buf: Vec<u8>,
    pos: usize,
}

impl Input {
    pub(super) fn new(stream: Arc<TcpStream>) -> Input {
        Input {
            stream,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub(super) fn has_buffered(&self) -> bool {
        self.pos < self.buf.len()
    }

    fn consume(&mut self, count: usize) {
        self.pos = (self.pos + count).min(self.buf.len());
    }

    /// Waits up to `idle` for the first byte of the next request. False when the peer
    /// closed, the wait timed out or the socket was shut down to stop the server.
    pub(super) fn wait_for_request(&mut self, idle: Duration) -> bool {
        if self.has_buffered() {
            return true;
        }
        // An idle connection keeps no heap buffer: the first read lands on the stack.
        self.buf = Vec::new();
        self.pos = 0;
        let mut first = [0; 1024];
        let timeout = idle.max(Duration::from_millis(1));
        if self.stream.set_read_timeout(Some(timeout)).is_err() {
            return false;
        }
        match (&*self.stream).read(&mut first) {
            Ok(0) | Err(_) => false,
            Ok(count) => {
                self.buf.reserve(READ_CHUNK);
                self.buf.extend_from_slice(&first[..count]);
                true
            }
        }
    }

    /// Reads at least one more byte into the buffer.
    fn fill(&mut self, deadline: Instant) -> Result<(), Failure> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let mut reader = Deadlined {
            stream: &self.stream,
            deadline,
        };
        let result = reader.read(&mut self.buf[start..]);
        let count = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(start + count);
        match result {
            Ok(0) => Err(Failure::Closed),
            Ok(_) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::TimedOut => Err(timed_out()),
            Err(_) => Err(Failure::Closed),
        }
    }

    /// Reads and parses a request head. A failure comes with the request's
    /// method and target when its request line arrived (for the log).
    pub(super) fn read_head(
        &mut self,
        deadline: Instant,
        max_body: usize,
    ) -> Result<Head, (Failure, Option<(String, String)>)> {
        let with_line = |input: &Input, failure| (failure, head::request_line(input.buffered()));
        loop {
            match head::parse(self.buffered(), max_body) {
                Ok(Some((head, length))) => {
                    self.consume(length);
                    return Ok(head);
                }
                Ok(None) => {}
                Err(refused) => return Err(with_line(self, refused.into())),
            }
            if let Err(failure) = self.fill(deadline) {
                return Err(with_line(self, failure));
            }
        }
    }

    /// True when the whole body is already buffered (then a 100 Continue is pointless).
    pub(super) fn holds_body(&self, framing: BodyFraming) -> bool {
        match framing {
            BodyFraming::Empty => true,
            BodyFraming::Length(length) => self.buffered().len() >= length,
            BodyFraming::Chunked => false,
        }
    }

    /// Reads the body the head announced, decoding chunked coding.
    pub(super) fn read_body(
        &mut self,
        framing: BodyFraming,
        max_body: usize,
        deadline: Instant,
        reserved: &mut Reservation<'_>,
    ) -> Result<Vec<u8>, Failure> {
        match framing {
            BodyFraming::Empty => Ok(Vec::new()),
            BodyFraming::Length(length) => {
                // Grow as bytes arrive rather than trusting the announced length.
                let mut body = Vec::with_capacity(length.min(BODY_SLICE));
                self.append_exact(&mut body, length, deadline, reserved)?;
                Ok(body)
            }
            BodyFraming::Chunked => self.read_chunked(max_body, deadline, reserved),
        }
    }

    /// Appends exactly `count` bytes to `body`: buffered ones first, then straight
    /// from the socket.
    fn append_exact(
        &mut self,
        body: &mut Vec<u8>,
        count: usize,
        deadline: Instant,
        reserved: &mut Reservation<'_>,
    ) -> Result<(), Failure> {
        let from_buffer = count.min(self.buffered().len());
        reserved.grow(from_buffer)?;
        body.extend_from_slice(&self.buffered()[..from_buffer]);
        self.consume(from_buffer);
        let mut missing = count - from_buffer;
        // The budget is taken for bytes that arrived, never for bytes announced:
        // a client that announces a large body and sends nothing holds none of it.
        while missing > 0 {
            let start = body.len();
            body.resize(start + missing.min(READ_CHUNK), 0);
            let mut reader = Deadlined {
                stream: &self.stream,
                deadline,
            };
            let result = reader.read(&mut body[start..]);
            let read = *result.as_ref().unwrap_or(&0);
            body.truncate(start + read);
            match result {
                Ok(0) => return Err(Failure::Closed),
                Ok(read) => {
                    reserved.grow(read)?;
                    missing -= read;
                }
                Err(error) if error.kind() == io::ErrorKind::TimedOut => return Err(timed_out()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Failure::Closed),
            }
        }
        Ok(())
    }

    /// RFC 9112 §7.1: chunks, each `size[;extensions]CRLF data CRLF`, a zero-size chunk,
    /// then trailer fields (read and dropped) and an empty line.
    fn read_chunked(
        &mut self,
        max_body: usize,
        deadline: Instant,
        reserved: &mut Reservation<'_>,
    ) -> Result<Vec<u8>, Failure> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(deadline)?;
            let size = chunk_size(&line)?;
            if size == 0 {
                break;
            }
            if size > max_body.saturating_sub(body.len()) {
                return Err(Failure::Refuse(
                    Refusal::PayloadTooLarge,
                    "chunked body over the body limit",
                ));
            }
            self.append_exact(&mut body, size, deadline, reserved)?;
            if !self.read_line(deadline)?.is_empty() {
                return Err(Failure::Refuse(
                    Refusal::BadRequest,
                    "chunk data longer than its size",
                ));
            }
        }
        let mut trailer_bytes = 0;
        loop {
            let line = self.read_line(deadline)?;
            if line.is_empty() {
                return Ok(body);
            }
            // RFC 9112 §7.1.2: trailer fields are field lines like the head's.
            if !is_field_line(&line) {
                return Err(Failure::Refuse(
                    Refusal::BadRequest,
                    "malformed trailer field",
                ));
            }
            trailer_bytes += line.len() + 2;
            if trailer_bytes > MAX_HEAD_BYTES {
                return Err(Failure::Refuse(
                    Refusal::HeadersTooLarge,
                    "trailer fields over the size limit",
                ));
            }
        }
    }

    /// One CRLF-terminated line, without the CRLF. A bare CR or LF is refused: lenient
    /// line endings are how requests get smuggled past a stricter proxy.
    fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, Failure> {
        let mut searched = 0;
        loop {
            let buffered = self.buffered();
            if let Some(offset) = buffered[searched..].iter().position(|&byte| byte == b'\n') {
                let end = searched + offset;
                if end > MAX_LINE_BYTES {
                    return Err(Failure::Refuse(Refusal::BadRequest, "chunk line too long"));
                }
                let Some(line) = buffered[..end].strip_suffix(b"\r") else {
                    return Err(Failure::Refuse(
                        Refusal::BadRequest,
                        "bare LF in chunked coding",
                    ));
                };
                if line.contains(&b'\r') {
                    return Err(Failure::Refuse(
                        Refusal::BadRequest,
                        "bare CR in chunked coding",
                    ));
                }
                let line = line.to_vec();
                self.consume(end + 1);
                return Ok(line);
            }
            if buffered.len() > MAX_LINE_BYTES {
                return Err(Failure::Refuse(Refusal::BadRequest, "chunk line too long"));
            }
            searched = buffered.len();
            self.fill(deadline)?;
        }
    }
}

/// The size of a chunk from its line (RFC 9112 §7.1, §7.1.1):
/// `chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] )`.
/// Extensions are checked, then ignored.
fn chunk_size(line: &[u8]) -> Result<usize, Failure> {
    let digits = line
        .iter()
        .take_while(|byte| byte.is_ascii_hexdigit())
        .count();
    if digits == 0 || !valid_extensions(&line[digits..]) {
        return Err(Failure::Refuse(Refusal::BadRequest, "invalid chunk size"));
    }
    let digits = std::str::from_utf8(&line[..digits]).unwrap_or("");
    // Leading zeros are legal; a value past usize is over any limit.
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    usize::from_str_radix(digits, 16)
        .map_err(|_| Failure::Refuse(Refusal::PayloadTooLarge, "chunk size over the body limit"))
}

/// Whether `rest` (what follows the chunk size) is a well-formed list of chunk
/// extensions: a NUL, a control or a stray byte there is refused, since a proxy
/// may cut the line at it differently than we do.
fn valid_extensions(mut rest: &[u8]) -> bool {
    loop {
        rest = rest.trim_ascii_start();
        let Some(after) = rest.strip_prefix(b";") else {
            return rest.is_empty();
        };
        let (name, after) = split_token(after.trim_ascii_start());
        if name.is_empty() {
            return false;
        }
        rest = after.trim_ascii_start();
        let Some(after) = rest.strip_prefix(b"=") else {
            continue;
        };
        let after = after.trim_ascii_start();
        rest = if let Some(quoted) = after.strip_prefix(b"\"") {
            match quoted_string_end(quoted) {
                Some(end) => &quoted[end..],
                None => return false,
            }
        } else {
            let (value, after) = split_token(after);
            if value.is_empty() {
                return false;
            }
            after
        };
    }
}

/// RFC 9110 §5.6.2: token characters.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn split_token(bytes: &[u8]) -> (&[u8], &[u8]) {
    let length = bytes.iter().take_while(|&&byte| is_tchar(byte)).count();
    bytes.split_at(length)
}

/// RFC 9110 §5.6.4: the length of a quoted string's rest after its opening
/// quote, through its closing quote; `None` if it never closes or holds a control.
fn quoted_string_end(bytes: &[u8]) -> Option<usize> {
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'"' => return Some(index + 1),
            b'\\' => {
                let escaped = *bytes.get(index + 1)?;
                if !is_text(escaped) {
                    return None;
                }
                index += 2;
            }
            _ if is_text(byte) => index += 1,
            _ => return None,
        }
    }
    None
}

/// HTAB, SP, visible ASCII and obs-text: what a field value or quoted text may hold.
fn is_text(byte: u8) -> bool {
    byte == b'\t' || byte == b' ' || (0x21..=0x7e).contains(&byte) || byte >= 0x80
}

/// RFC 9112 §5: `field-name ":" OWS field-value OWS`, the name a token.
fn is_field_line(line: &[u8]) -> bool {
    let (name, rest) = split_token(line);
    !name.is_empty() && rest.first() == Some(&b':') && rest[1..].iter().all(|&byte| is_text(byte))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// An `Input` reading from a socket pair into which `bytes` were written and the
    /// write side shut down.
    fn input_with(bytes: &[u8]) -> (Input, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(bytes).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        (Input::new(Arc::new(server)), client)
    }

    /// A reservation against a budget no test body reaches.
    fn unlimited() -> Reservation<'static> {
        static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX / 2);
        Reservation::new(&BUDGET)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    fn chunked(bytes: &[u8], max: usize) -> Result<Vec<u8>, Failure> {
        let (mut input, _client) = input_with(bytes);
        input.read_body(BodyFraming::Chunked, max, soon(), &mut unlimited())
    }

    fn refusal(result: Result<Vec<u8>, Failure>) -> Refusal {
        match result {
            Err(Failure::Refuse(refusal, _)) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn decodes_chunks_with_extensions_and_trailers() {
        let body = chunked(b"4;name=\"v\"\r\nWiki\r\n5 ;x\r\npedia\r\n00E\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT", 100);
        assert_eq!(body.unwrap(), b"Wikipedia in\r\n\r\nchunks.");
        let body = chunked(
            b"2 ; a = b ;c;d=\"q \\\" \\x\"\r\nab\r\n0;e\r\nX-A:\r\nX-B: c d \r\n\r\n",
            100,
        );
        assert_eq!(body.unwrap(), b"ab");
    }

    #[test]
    fn keeps_bytes_after_the_body() {
        let (mut input, _client) = input_with(b"3\r\nabc\r\n0\r\n\r\nGET");
        let body = input
            .read_body(BodyFraming::Chunked, 10, soon(), &mut unlimited())
            .unwrap();
        assert_eq!(body, b"abc");
        assert_eq!(input.buffered(), b"GET");
    }

    #[test]
    fn refuses_malformed_chunks() {
        for bytes in [
            &b"x\r\n"[..],
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabcd\r\n0\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\rX\r\n\r\n",
            b"-3\r\nabc\r\n0\r\n\r\n",
            b"0x3\r\nabc\r\n0\r\n\r\n",
            // RFC 9112 §7.1.1: malformed chunk extensions.
            b"2;a\x00b\r\nab\r\n0\r\n\r\n",
            b"2;\r\nab\r\n0\r\n\r\n",
            b"2;a=\r\nab\r\n0\r\n\r\n",
            b"2;a=\"x\r\nab\r\n0\r\n\r\n",
            b"2;a=\"x\x01\"\r\nab\r\n0\r\n\r\n",
            b"2;a b\r\nab\r\n0\r\n\r\n",
            b"2 x\r\nab\r\n0\r\n\r\n",
            // RFC 9112 §7.1.2: malformed trailer fields.
            b"0\r\nno colon\r\n\r\n",
            b"0\r\n: empty name\r\n\r\n",
            b"0\r\nX: a\x00b\r\n\r\n",
            b"0\r\nBad Name: v\r\n\r\n",
            b"0\r\n folded: v\r\n\r\n",
        ] {
            assert_eq!(
                refusal(chunked(bytes, 100)),
                Refusal::BadRequest,
                "{bytes:?}"
            );
        }
        let long_line = [&b"1;"[..], &[b'a'; MAX_LINE_BYTES + 10], b"\r\n"].concat();
        assert_eq!(refusal(chunked(&long_line, 100)), Refusal::BadRequest);
    }

    #[test]
    fn refuses_oversized_chunked_bodies() {
        assert_eq!(
            refusal(chunked(b"5\r\nabcde\r\n6\r\nfghijk\r\n0\r\n\r\n", 10)),
            Refusal::PayloadTooLarge
        );
        assert_eq!(
            refusal(chunked(b"ffffffffffffffffffffff\r\n", 10)),
            Refusal::PayloadTooLarge
        );
        let trailers = format!("0\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEAD_BYTES / 4));
        assert_eq!(
            refusal(chunked(trailers.as_bytes(), 10)),
            Refusal::HeadersTooLarge
        );
    }

    #[test]
    fn truncated_body_closes_silently() {
        assert!(matches!(chunked(b"5\r\nab", 100), Err(Failure::Closed)));
        let (mut input, _client) = input_with(b"ab");
        let result = input.read_body(BodyFraming::Length(5), 100, soon(), &mut unlimited());
        assert!(matches!(result, Err(Failure::Closed)));
    }

    #[test]
    fn slow_body_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut input = Input::new(Arc::new(server));
        let deadline = Instant::now() + Duration::from_millis(50);
        let result = input.read_body(BodyFraming::Length(5), 100, deadline, &mut unlimited());
        assert_eq!(refusal(result), Refusal::RequestTimeout);
    }
}

/// The most a body is given room for before its bytes arrive.
const BODY_SLICE: usize = 64 * 1024;

/// A growing share of the server's body budget (`Shared::body_budget`),
/// given back when the request is done.
pub(super) struct Reservation<'a> {
    budget: &'a AtomicUsize,
    bytes: usize,
}

impl<'a> Reservation<'a> {
    pub(super) fn new(budget: &'a AtomicUsize) -> Reservation<'a> {
        Reservation { budget, bytes: 0 }
    }

    /// Takes `bytes` more, or refuses with 503 when the budget is spent.
    fn grow(&mut self, bytes: usize) -> Result<(), Failure> {
        self.budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .map_err(|_| {
                Failure::Refuse(
                    Refusal::Overloaded,
                    "the bodies in flight are over the body budget",
                )
            })?;
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.fetch_add(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn a_stalled_body_holds_only_the_bytes_that_arrived() {
        use std::io::Write;
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(b"0123456789").unwrap();
        let mut input = Input::new(Arc::new(server));
        let budget = AtomicUsize::new(1_000_000);
        let mut reserved = Reservation::new(&budget);
        let deadline = Instant::now() + Duration::from_millis(200);
        let result = input.read_body(
            BodyFraming::Length(500_000),
            1_000_000,
            deadline,
            &mut reserved,
        );
        assert!(matches!(
            result,
            Err(Failure::Refuse(Refusal::RequestTimeout, _))
        ));
        assert_eq!(reserved.bytes, 10);
        assert_eq!(budget.load(Ordering::Acquire), 1_000_000 - 10);
        drop(reserved);
        assert_eq!(budget.load(Ordering::Acquire), 1_000_000);
    }

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let budget = AtomicUsize::new(10);
        let mut a = Reservation::new(&budget);
        a.grow(6).unwrap();
        let mut b = Reservation::new(&budget);
        assert!(b.grow(5).is_err());
        b.grow(4).unwrap();
        drop((a, b));
        assert_eq!(budget.load(Ordering::Acquire), 10);
    }
}
