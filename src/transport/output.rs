//! Writing a `rouille::Response` to the wire: status line, sanitised header fields,
//! framing (`Content-Length`, or chunked when the size is unknown) and the body.
//!
//! This layer owns framing, so the handler's own `Content-Length`,
//! `Transfer-Encoding` and `Connection` fields are skipped, and a field whose name or
//! value could break the head (CR, LF, NUL, other controls) never reaches the wire.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::deadline::Deadlined;

/// Bodies up to this size go out in the same write as the head.
const COALESCE_BYTES: usize = 32 * 1024;
/// The size of one chunk when the body's size is unknown.
const CHUNK_BYTES: usize = 16 * 1024;

/// What the response must fit: the request it answers and the connection's fate.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply {
    pub head_only: bool,
    pub http10: bool,
    pub keep_alive: bool,
}

impl Reply {
    /// For answers that end the connection (refusals, failures).
    pub(super) const CLOSE: Reply = Reply {
        head_only: false,
        http10: false,
        keep_alive: false,
    };
}

/// Writes `response`; `Ok(true)` when the connection may carry another request.
pub(super) fn write_response(
    stream: &TcpStream,
    response: rouille::Response,
    reply: Reply,
    deadline: Instant,
) -> io::Result<bool> {
    let mut out = Deadlined { stream, deadline };
    let (head, body, keep_alive) = render_head(response, reply);
    match body {
        Body::None => out.write_all(&head)?,
        Body::Sized(reader, size) => write_sized(&mut out, head, reader, size)?,
        Body::Chunked(reader) => {
            out.write_all(&head)?;
            write_chunked(&mut out, reader)?;
        }
        Body::UntilClose(mut reader) => {
            out.write_all(&head)?;
            io::copy(&mut reader, &mut out)?;
        }
    }
    Ok(keep_alive)
}

/// The whole response as bytes, body included up to `limit`; for the acceptor's
/// one-shot refusals, which must not block.
pub(super) fn render_all(response: rouille::Response, limit: usize) -> Vec<u8> {
    let (mut bytes, body, _) = render_head(response, Reply::CLOSE);
    if let Body::Sized(reader, size) = body
        && size <= limit
    {
        let _ = reader.take(size as u64).read_to_end(&mut bytes);
    }
    bytes
}

pub(super) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

enum Body {
    None,
    Sized(Box<dyn Read + Send>, usize),
    Chunked(Box<dyn Read + Send>),
    UntilClose(Box<dyn Read + Send>),
}

fn render_head(response: rouille::Response, reply: Reply) -> (Vec<u8>, Body, bool) {
    let mut status = response.status_code;
    if !(200..=999).contains(&status) {
        // A 1xx final answer would leave the client waiting for another one.
        log::warn!("handler returned status {status}; sending 500");
        status = 500;
    }
    let (reader, size) = response.data.into_reader_and_size();
    // RFC 9110 §6.4.1: 204 and 304 never carry content.
    let body_allowed = status != 204 && status != 304;
    let send_body = body_allowed && !reply.head_only;
    let body = match size {
        _ if !send_body => Body::None,
        Some(size) => Body::Sized(reader, size),
        None if reply.http10 => Body::UntilClose(reader),
        None => Body::Chunked(reader),
    };
    let keep_alive = reply.keep_alive && !matches!(body, Body::UntilClose(_));

    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.to_string().as_bytes());
    head.push(b' ');
    head.extend_from_slice(reason(status).as_bytes());
    head.extend_from_slice(b"\r\nDate: ");
    head.extend_from_slice(http_date(SystemTime::now()).as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &response.headers {
        if is_framing_field(name) {
            continue;
        }
        if !is_token(name) || !is_field_value(value) {
            if is_token(name) {
                log::warn!("dropped response header {name} holding forbidden bytes");
            } else {
                log::warn!("dropped a response header with an invalid name");
            }
            continue;
        }
        push_field(&mut head, name, value);
    }
    match (&body, size) {
        (Body::Chunked(_), _) => push_field(&mut head, "Transfer-Encoding", "chunked"),
        // HEAD still announces the length GET would have (RFC 9110 §9.3.2).
        (_, Some(size)) if body_allowed => {
            push_field(&mut head, "Content-Length", &size.to_string())
        }
        _ => {}
    }
    if !keep_alive {
        push_field(&mut head, "Connection", "close");
    } else if reply.http10 {
        push_field(&mut head, "Connection", "keep-alive");
    }
    head.extend_from_slice(b"\r\n");
    (head, body, keep_alive)
}

fn push_field(head: &mut Vec<u8>, name: &str, value: &str) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value.as_bytes());
    head.extend_from_slice(b"\r\n");
}

fn write_sized(
    out: &mut Deadlined,
    mut head: Vec<u8>,
    reader: Box<dyn Read + Send>,
    size: usize,
) -> io::Result<()> {
    let mut reader = reader.take(size as u64);
    let sent = if size <= COALESCE_BYTES {
        let before = head.len();
        reader.read_to_end(&mut head)?;
        out.write_all(&head)?;
        head.len() - before
    } else {
        out.write_all(&head)?;
        io::copy(&mut reader, out)? as usize
    };
    if sent != size {
        // The promised length can't be kept; only closing tells the client.
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "response body shorter than its size",
        ));
    }
    Ok(())
}

fn write_chunked(out: &mut Deadlined, mut reader: Box<dyn Read + Send>) -> io::Result<()> {
    let mut chunk = vec![0; CHUNK_BYTES];
    let mut frame = Vec::with_capacity(CHUNK_BYTES + 16);
    loop {
        let count = match reader.read(&mut chunk) {
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        frame.clear();
        if count == 0 {
            frame.extend_from_slice(b"0\r\n\r\n");
            return out.write_all(&frame);
        }
        frame.extend_from_slice(format!("{count:x}\r\n").as_bytes());
        frame.extend_from_slice(&chunk[..count]);
        frame.extend_from_slice(b"\r\n");
        out.write_all(&frame)?;
    }
}

/// Fields this layer writes itself (rouille documents the same list as ignored).
fn is_framing_field(name: &str) -> bool {
    [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "trailer",
        "upgrade",
    ]
    .iter()
    .any(|framing| name.eq_ignore_ascii_case(framing))
}

/// RFC 9110 §5.1: a field name is a token.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// RFC 9110 §5.5: visible characters, spaces and tabs; never CR, LF, NUL or another control.
fn is_field_value(value: &str) -> bool {
    value
        .bytes()
        .all(|byte| byte == b'\t' || (byte >= b' ' && byte != 0x7f))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        419 => "Authentication Timeout",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        // The reason phrase may be empty (RFC 9112 §4); clients ignore it anyway.
        _ => "",
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(now: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let days = seconds / 86_400;
    let (hour, minute, second) = (seconds % 86_400 / 3600, seconds % 3600 / 60, seconds % 60);
    let (year, month, day) = crate::clock::civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{}, {day:02} {} {year} {hour:02}:{minute:02}:{second:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rendered(response: rouille::Response, reply: Reply) -> String {
        String::from_utf8(render_all_with(response, reply)).unwrap()
    }

    fn render_all_with(response: rouille::Response, reply: Reply) -> Vec<u8> {
        let (mut bytes, body, _) = render_head(response, reply);
        if let Body::Sized(mut reader, _) = body {
            reader.read_to_end(&mut bytes).unwrap();
        }
        bytes
    }

    const KEEP: Reply = Reply {
        head_only: false,
        http10: false,
        keep_alive: true,
    };

    #[test]
    fn dates_are_imf_fixdates() {
        let at = |seconds| http_date(UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_798_761_599), "Thu, 31 Dec 2026 23:59:59 GMT");
    }

    #[test]
    fn drops_injected_and_framing_fields() {
        let response = rouille::Response::text("hi")
            .with_additional_header("X-Ok", "fine\tvalue")
            .with_additional_header("X-Evil", "a\r\nSet-Cookie: owned=1")
            .with_additional_header("X-Nul", "a\0b")
            .with_additional_header("Bad\r\nName", "v")
            .with_additional_header("Content-Length", "999")
            .with_additional_header("transfer-encoding", "chunked")
            .with_additional_header("Connection", "upgrade");
        let text = rendered(response, KEEP);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nX-Ok: fine\tvalue\r\n"));
        assert!(text.contains("\r\nContent-Length: 2\r\n"));
        for absent in [
            "Set-Cookie",
            "X-Evil",
            "X-Nul",
            "Bad",
            "999",
            "chunked",
            "Connection",
            "\0",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        assert!(text.ends_with("\r\n\r\nhi"));
    }

    #[test]
    fn framing_follows_the_request() {
        let text = rendered(
            rouille::Response::text("abc"),
            Reply {
                head_only: true,
                ..KEEP
            },
        );
        assert!(text.contains("Content-Length: 3\r\n") && text.ends_with("\r\n\r\n"));
        let text = rendered(rouille::Response::text("abc"), Reply::CLOSE);
        assert!(text.contains("Connection: close\r\n"));
        let text = rendered(
            rouille::Response::text("abc"),
            Reply {
                http10: true,
                ..KEEP
            },
        );
        assert!(text.contains("Connection: keep-alive\r\n"));
        let text = rendered(rouille::Response::empty_204(), KEEP);
        assert!(
            text.starts_with("HTTP/1.1 204 No Content\r\n") && !text.contains("Content-Length")
        );
        let streamed = || rouille::Response::from_data("text/plain", "x").with_status_code(200);
        let unsized_body = |reply| {
            let mut response = streamed();
            response.data = rouille::ResponseBody::from_reader(io::Cursor::new(b"xyz".to_vec()));
            render_head(response, reply)
        };
        let (head, body, keep) = unsized_body(KEEP);
        assert!(matches!(body, Body::Chunked(_)) && keep);
        assert!(
            String::from_utf8(head)
                .unwrap()
                .contains("Transfer-Encoding: chunked\r\n")
        );
        let (head, body, keep) = unsized_body(Reply {
            http10: true,
            ..KEEP
        });
        assert!(matches!(body, Body::UntilClose(_)) && !keep);
        assert!(
            String::from_utf8(head)
                .unwrap()
                .contains("Connection: close\r\n")
        );
    }

    #[test]
    fn informational_final_status_becomes_500() {
        let text = rendered(rouille::Response::text("x").with_status_code(101), KEEP);
        assert!(text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    }
}
