//! Parsing a request head (request line and header fields) with `httparse`, and
//! deciding how its body is framed (RFC 9112 §6).
//!
//! Every ambiguity a proxy in front of us could read differently is refused here:
//! a line ending other than CRLF, `Transfer-Encoding` together with
//! `Content-Length`, any transfer coding other than a lone `chunked`, differing
//! `Content-Length` values, and an HTTP/1.1 request without exactly one valid `Host`.

use super::Refusal;

/// The largest request head we buffer; a longer one is refused as too large.
pub(super) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most header fields a request may carry.
pub(super) const MAX_HEADERS: usize = 64;

/// A refusal and the reason logged for it (never request data: it may hold tokens).
pub(super) type Refused = (Refusal, &'static str);

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyFraming {
    Empty,
    Length(usize),
    Chunked,
}

/// A parsed request head, ready to become a `rouille::Request` once the body is read.
#[derive(Debug)]
pub(super) struct Head {
    pub method: String,
    /// The request target in origin form (`/path?query`).
    pub target: String,
    pub http10: bool,
    /// The header fields for the handler, without `Transfer-Encoding`/`Content-Length`:
    /// the connection layer adds one `Content-Length` for the decoded body.
    pub headers: Vec<(String, String)>,
    pub framing: BodyFraming,
    /// Whether the client allows the connection to stay open after this exchange.
    pub keep_alive: bool,
    pub expect_continue: bool,
}

/// Parses the head at the start of `buf`. `Ok(None)` means more bytes are needed;
/// `Ok(Some((head, length)))` gives the head and how many bytes of `buf` it took.
pub(super) fn parse(buf: &[u8], max_body: usize) -> Result<Option<(Head, usize)>, Refused> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let length = match request.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err((Refusal::HeadersTooLarge, "request head over the size limit"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err((Refusal::HeadersTooLarge, "too many header fields"));
        }
        Err(_) => return Err((Refusal::BadRequest, "malformed request head")),
    };
    if length > MAX_HEAD_BYTES {
        return Err((Refusal::HeadersTooLarge, "request head over the size limit"));
    }
    // RFC 9112 §2.2: httparse takes a bare LF as a line end; a proxy that does not
    // would see a different request (a smuggling vector), so only CRLF is accepted.
    if has_bare_lf(&buf[..length]) {
        return Err((Refusal::BadRequest, "bare LF in the request head"));
    }
    // httparse only completes with all three request-line parts and version 1.0 or 1.1.
    let (Some(method), Some(path), Some(version)) = (request.method, request.path, request.version)
    else {
        return Err((Refusal::BadRequest, "incomplete request line"));
    };
    let http10 = version == 0;

    let mut headers: Vec<(String, String)> = Vec::with_capacity(request.headers.len() + 1);
    let mut framing = FramingFields::default();
    let mut hosts = 0;
    let (mut close, mut keep_alive, mut expect_continue) = (false, false, false);
    for field in request.headers.iter() {
        let Ok(value) = std::str::from_utf8(field.value) else {
            return Err((Refusal::BadRequest, "header value is not UTF-8"));
        };
        let name = field.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            framing.transfer_encodings.push(value);
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            framing.content_lengths.push(value);
            continue;
        }
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !is_valid_host(value) {
                return Err((Refusal::BadRequest, "invalid Host field"));
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-for")
            && let Some(joined) = headers
                .iter_mut()
                .find(|field| field.0.eq_ignore_ascii_case(name))
        {
            // Handlers read one field; a proxy may append its own line instead of
            // extending the list, so all lines are joined in order (RFC 9110 §5.3).
            joined.1.push_str(", ");
            joined.1.push_str(value);
            continue;
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                close |= option.eq_ignore_ascii_case("close");
                keep_alive |= option.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            // RFC 9110 §10.1.1: a 100-continue expectation from HTTP/1.0 is ignored.
            expect_continue |= !http10 && value.trim().eq_ignore_ascii_case("100-continue");
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    // RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host.
    if hosts > 1 || (hosts == 0 && !http10) {
        return Err((Refusal::BadRequest, "not exactly one Host field"));
    }
    let framing = framing.decide(http10, max_body)?;
    if let BodyFraming::Length(_) | BodyFraming::Chunked = framing {
        // The real length is only known once a chunked body is decoded; the caller
        // fills it in. A placeholder keeps the field at its place for the handler.
        headers.push(("Content-Length".to_owned(), String::new()));
    }
    let head = Head {
        method: method.to_owned(),
        target: origin_form(path),
        http10,
        headers,
        framing,
        keep_alive: if http10 { keep_alive && !close } else { !close },
        expect_continue,
    };
    Ok(Some((head, length)))
}

/// The method and target of a head that could not be used, for the log; `None`
/// when its request line is incomplete or not of the form `METHOD TARGET HTTP/x`.
pub(super) fn request_line(buf: &[u8]) -> Option<(String, String)> {
    let end = buf.iter().position(|&byte| byte == b'\n')?;
    let line = std::str::from_utf8(&buf[..end]).ok()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let method_ok = !method.is_empty()
        && method
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
    if parts.next().is_some() || !method_ok || target.is_empty() || !version.starts_with("HTTP/") {
        return None;
    }
    Some((method.to_owned(), origin_form(target)))
}

impl Head {
    pub(super) fn line(&self) -> Option<super::RequestLine<'_>> {
        Some(super::RequestLine {
            method: &self.method,
            target: &self.target,
        })
    }

    /// Sets the `Content-Length` seen by the handler to the body's decoded length.
    pub(super) fn set_body_length(&mut self, length: usize) {
        if let Some(field) = self
            .headers
            .last_mut()
            .filter(|(name, value)| name == "Content-Length" && value.is_empty())
        {
            field.1 = length.to_string();
        }
    }
}

#[derive(Default)]
struct FramingFields<'a> {
    transfer_encodings: Vec<&'a str>,
    content_lengths: Vec<&'a str>,
}

impl FramingFields<'_> {
    fn decide(&self, http10: bool, max_body: usize) -> Result<BodyFraming, Refused> {
        if !self.transfer_encodings.is_empty() {
            if !self.content_lengths.is_empty() {
                return Err((Refusal::BadRequest, "Transfer-Encoding with Content-Length"));
            }
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
            if http10 {
                return Err((Refusal::BadRequest, "Transfer-Encoding in HTTP/1.0"));
            }
            return match self.transfer_encodings.as_slice() {
                [coding] if coding.trim().eq_ignore_ascii_case("chunked") => {
                    Ok(BodyFraming::Chunked)
                }
                _ => Err((Refusal::BadRequest, "unsupported Transfer-Encoding")),
            };
        }
        let mut length = None;
        // RFC 9112 §6.3: a list of identical values ("5, 5") may stand for one value.
        for value in self
            .content_lengths
            .iter()
            .flat_map(|value| value.split(','))
        {
            let value = parse_length(value.trim())
                .ok_or((Refusal::BadRequest, "invalid Content-Length"))?;
            if length.is_some_and(|seen| seen != value) {
                return Err((Refusal::BadRequest, "differing Content-Length values"));
            }
            length = Some(value);
        }
        match length {
            None | Some(0) => Ok(BodyFraming::Empty),
            Some(length) if length > max_body as u64 => Err((
                Refusal::PayloadTooLarge,
                "Content-Length over the body limit",
            )),
            Some(length) => Ok(BodyFraming::Length(length as usize)),
        }
    }
}

/// Whether a line feed in the head lacks its carriage return.
fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(index, &byte)| byte == b'\n' && (index == 0 || head[index - 1] != b'\r'))
}

/// RFC 9112 §3.2 and RFC 3986 §3.2.2: `uri-host [ ":" port ]`, where the host is
/// an IP literal in brackets or a name of unreserved characters, sub-delimiters
/// and percent escapes. A comma is refused too: `Host: a, b` is two hosts.
/// An empty value is allowed (RFC 9112 §3.2, a target without authority).
fn is_valid_host(value: &str) -> bool {
    let value = value.trim_matches([' ', '\t']);
    let (host, port) = match value.strip_prefix('[') {
        Some(literal) => match literal.split_once(']') {
            Some((address, rest)) => {
                let address_ok = !address.is_empty()
                    && address
                        .bytes()
                        .all(|byte| byte.is_ascii_hexdigit() || byte == b':' || byte == b'.');
                if !address_ok {
                    return false;
                }
                ("", rest)
            }
            None => return false,
        },
        None => match value.rfind(':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|byte| byte.is_ascii_digit()));
    let host_ok = host
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"-._~%!$&'()*+;=".contains(&byte));
    port_ok && host_ok
}

/// Decimal digits only (no sign, no spaces); values too long for u64 read as u64::MAX,
/// which is over any body limit.
fn parse_length(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().unwrap_or(u64::MAX))
}

/// RFC 9112 §3.2.2: a server must accept the absolute form (`http://host/path`);
/// handlers route on the path, so keep only that.
fn origin_form(target: &str) -> String {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return target.to_owned();
    };
    match rest.find(['/', '?']) {
        Some(start) if rest[start..].starts_with('/') => rest[start..].to_owned(),
        Some(start) => format!("/{}", &rest[start..]),
        None => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text`, with a `Host` field added after the request line of an
    /// HTTP/1.1 request that has none (the tests are about something else).
    fn head(text: &str) -> Result<Option<(Head, usize)>, Refused> {
        parse(with_host(text).as_bytes(), 1000)
    }

    fn with_host(text: &str) -> String {
        match text.split_once("\r\n") {
            Some((line, rest))
                if line.ends_with("HTTP/1.1") && !rest.to_ascii_lowercase().contains("host:") =>
            {
                format!("{line}\r\nHost: t\r\n{rest}")
            }
            _ => text.to_owned(),
        }
    }

    fn refusal(text: &str) -> Refusal {
        head(text).expect_err("should be refused").0
    }

    #[test]
    fn parses_a_simple_request() {
        let text = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\nleftover";
        let (head, length) = head(text).unwrap().unwrap();
        assert_eq!(length, text.len() - "leftover".len());
        assert_eq!(
            (head.method.as_str(), head.target.as_str()),
            ("GET", "/a?b=1")
        );
        assert_eq!(head.framing, BodyFraming::Empty);
        assert!(head.keep_alive && !head.http10 && !head.expect_continue);
        assert_eq!(head.headers.len(), 2);
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert!(head("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(head("").unwrap().is_none());
    }

    #[test]
    fn keep_alive_rules() {
        let keep = |text: &str| head(text).unwrap().unwrap().0.keep_alive;
        assert!(!keep("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: te, close\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn framing_ambiguities_are_bad_requests() {
        let bad = [
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET / FTP/1.1\r\n\r\n",
            "GET /\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
        ];
        for text in bad {
            assert_eq!(refusal(text), Refusal::BadRequest, "{text:?}");
        }
    }

    #[test]
    fn line_endings_other_than_crlf_are_bad_requests() {
        for text in [
            "GET / HTTP/1.1\nHost: t\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: t\n\r\n",
            "GET / HTTP/1.1\r\nHost: t\r\n\n",
            "GET / HTTP/1.1\r\nHost: t\n\n",
            "GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
        ] {
            assert_eq!(
                parse(text.as_bytes(), 10).map(|_| ()).unwrap_err().0,
                Refusal::BadRequest,
                "{text:?}"
            );
        }
    }

    #[test]
    fn http11_needs_exactly_one_valid_host() {
        let parsed = |text: &str| parse(text.as_bytes(), 10).map(|found| found.is_some());
        for bad in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a, b\r\n\r\n",
        ] {
            assert_eq!(parsed(bad).unwrap_err().0, Refusal::BadRequest, "{bad:?}");
        }
        for good in [
            "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: xn--d1acufc.xn--p1ai\r\n\r\n",
            "GET / HTTP/1.1\r\nHost:\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(parsed(good), Ok(true), "{good:?}");
        }
    }

    #[test]
    fn forwarded_for_lines_are_joined_in_order() {
        let text = "GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n\
                    X-Other: o\r\nx-forwarded-for: 3.3.3.3\r\n\r\n";
        let (head, _) = head(text).unwrap().unwrap();
        let forwarded: Vec<_> = head
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(forwarded, ["1.1.1.1, 2.2.2.2, 3.3.3.3"]);
    }

    #[test]
    fn a_refused_head_still_names_its_request_line() {
        let line = |text: &str| request_line(text.as_bytes());
        assert_eq!(
            line("POST /a?b HTTP/1.1\r\nHost: a, b\r\n\r\n"),
            Some(("POST".into(), "/a?b".into()))
        );
        assert_eq!(
            line("GET http://x/y HTTP/1.1\n"),
            Some(("GET".into(), "/y".into()))
        );
        for unusable in [
            "GET / HTTP/1.1",
            "\r\n",
            "GET /\r\n",
            "G T / HTTP/1.1\r\n",
            "\x16\x03\n",
        ] {
            assert_eq!(line(unusable), None, "{unusable:?}");
        }
    }

    #[test]
    fn chunked_is_case_insensitive() {
        let text = "POST / HTTP/1.1\r\nTransfer-Encoding:  ChUnKeD \r\n\r\n";
        assert_eq!(head(text).unwrap().unwrap().0.framing, BodyFraming::Chunked);
    }

    #[test]
    fn identical_content_lengths_are_one() {
        let text = "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\n";
        let (mut head, _) = head(text).unwrap().unwrap();
        assert_eq!(head.framing, BodyFraming::Length(5));
        head.set_body_length(5);
        let lengths: Vec<_> = head
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .collect();
        assert_eq!(lengths, [&("Content-Length".to_owned(), "5".to_owned())]);
    }

    #[test]
    fn non_utf8_header_value_is_refused() {
        let text = b"GET / HTTP/1.1\r\nHost: t\r\nX: \xff\xfe\r\n\r\n";
        assert_eq!(parse(text, 10).unwrap_err().0, Refusal::BadRequest);
    }

    #[test]
    fn size_limits() {
        let big = "POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n";
        assert_eq!(refusal(big), Refusal::PayloadTooLarge);
        let huge = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(refusal(huge), Refusal::PayloadTooLarge);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            refusal(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Refusal::HeadersTooLarge
        );
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(refusal(&long), Refusal::HeadersTooLarge);
        let complete = format!("{long}\r\n\r\n");
        assert_eq!(refusal(&complete), Refusal::HeadersTooLarge);
    }

    #[test]
    fn expect_continue_only_in_http11() {
        let with = |version: &str| {
            let text = format!("POST / HTTP/{version}\r\nExpect: 100-Continue\r\n\r\n");
            head(&text).unwrap().unwrap().0.expect_continue
        };
        assert!(with("1.1"));
        assert!(!with("1.0"));
    }

    #[test]
    fn absolute_form_becomes_origin_form() {
        assert_eq!(origin_form("http://example.com/a/b?c"), "/a/b?c");
        assert_eq!(origin_form("HTTPS://example.com"), "/");
        assert_eq!(origin_form("http://example.com?x=1"), "/?x=1");
        assert_eq!(origin_form("/plain"), "/plain");
        assert_eq!(origin_form("*"), "*");
        assert_eq!(origin_form("héllo"), "héllo");
    }
}
