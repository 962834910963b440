//! A small HTTP/1.1 client over `std::net::TcpStream`: requests built in code,
//! responses framed by `Content-Length`, chunked encoding or end of stream. Raw
//! connections (`Conn`) stay open for keep-alive, trickling and framing tests.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The default wait for a response before a test gives up on it.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(15);

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response {} is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Everything the response holds, for searching it for secrets.
    pub fn raw_text(&self) -> String {
        let mut all = String::new();
        for (n, v) in &self.headers {
            all.push_str(&format!("{n}: {v}\n"));
        }
        all.push_str(&self.text());
        all
    }
}

/// One request; `send` opens a fresh connection for it, `send_on` reuses one.
#[derive(Debug, Clone)]
pub struct Request {
    addr: SocketAddr,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(addr: SocketAddr, method: &str, path: &str) -> Request {
        Request {
            addr,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `Authorization: Bearer TOKEN`.
    pub fn bearer(self, token: &str) -> Request {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, value: &Value) -> Request {
        self.body_with_type("application/json", value.to_string().into_bytes())
    }

    /// A body with the given `Content-Type`.
    pub fn body_with_type(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Request {
        self.headers
            .push(("Content-Type".to_string(), content_type.to_string()));
        self.body = Some(body.into());
        self
    }

    /// The request as bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.addr
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = &self.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else if matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some(body) = &self.body {
            bytes.extend_from_slice(body);
        }
        bytes
    }

    /// Sends the request on a new connection and reads the response.
    pub fn send(&self) -> Response {
        let mut conn = Conn::open(self.addr);
        self.send_on(&mut conn)
    }

    /// Sends the request on an open connection and reads the response.
    pub fn send_on(&self, conn: &mut Conn) -> Response {
        // A server may answer early (413) and close before reading the whole body;
        // the response is still there to read, so a failed write is not fatal.
        let _ = conn.write_raw(&self.to_bytes());
        conn.read_response().unwrap_or_else(|e| {
            panic!(
                "no response to {} {}: {e}",
                self.method,
                self.path.chars().take(200).collect::<String>()
            )
        })
    }
}

/// A raw client connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects, panicking when that fails.
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// Connects with the default response deadline as read timeout.
    pub fn try_open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(RESPONSE_DEADLINE))?;
        stream.set_write_timeout(Some(RESPONSE_DEADLINE))?;
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Writes bytes as they are.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut stream = self.stream();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Sets how long a read may block.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream()
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
    }

    /// Reads one response (skipping `1xx` interim responses).
    pub fn read_response(&mut self) -> io::Result<Response> {
        loop {
            let response = self.read_one()?;
            if !(100..200).contains(&response.status) {
                return Ok(response);
            }
        }
    }

    /// Reads one response, an interim `1xx` one included.
    pub fn read_one(&mut self) -> io::Result<Response> {
        let status_line = self.read_line()?;
        if status_line.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| bad_data(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad_data(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("Transfer-Encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            response.body = self.read_chunked()?;
        } else if let Some(length) = response.header("Content-Length") {
            let length: usize = length
                .parse()
                .map_err(|_| bad_data(format!("bad Content-Length {length:?}")))?;
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body)?;
            response.body = body;
        } else {
            self.reader.read_to_end(&mut response.body)?;
        }
        Ok(response)
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| bad_data(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                while !self.read_line()?.is_empty() {}
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            self.read_line()?;
        }
    }

    /// One line without its CRLF; empty at end of stream.
    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        String::from_utf8(line).map_err(|_| bad_data("header line is not UTF-8".to_string()))
    }

    /// Waits up to `within` for the server to close the connection, discarding any
    /// data; true when it was closed (end of stream or reset) in time.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.read_until_closed(within).is_ok()
    }

    /// Reads until the server closes the connection: `Ok(data)` when it closed
    /// within `within`, `Err(data)` when it was still open then.
    pub fn read_until_closed(&mut self, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let deadline = Instant::now() + within;
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(data);
            }
            self.set_read_timeout(left);
            match self.reader.read(&mut buf) {
                Ok(0) => return Ok(data),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if is_timeout(&e) => return Err(data),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Ok(data),
            }
        }
    }

    /// Whether the server sent something or closed within `timeout`, without
    /// consuming anything.
    pub fn readable_within(&mut self, timeout: Duration) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        self.set_read_timeout(timeout);
        let mut probe = [0u8; 1];
        let ready = match self.stream().peek(&mut probe) {
            Ok(_) => true,
            Err(e) => !is_timeout(&e) && e.kind() != io::ErrorKind::Interrupted,
        };
        self.set_read_timeout(RESPONSE_DEADLINE);
        ready
    }
}

fn bad_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Whether an error is a read timeout rather than a closed connection.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
