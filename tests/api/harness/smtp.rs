//! A real SMTP server inside the test process: the `mailin` library speaks
//! the protocol (EHLO, MAIL, RCPT, DATA, dot-stuffing, replies); this file
//! only accepts connections on loopback and feeds it lines. Each delivered
//! message is kept for the test. `Mode::Refuse` answers every recipient with
//! a permanent 550.

use mailin::{Action, Handler, Response, SessionBuilder, response};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the server does with a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// 550 to every RCPT TO.
    Refuse,
}

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// RCPT commands seen (refused ones included).
    recipients: AtomicUsize,
    stop: AtomicBool,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A loopback port that nothing listens on now (for "the relay is down";
/// `SmtpServer::start_on` brings a server up on it later).
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl SmtpServer {
    pub fn start(mode: Mode) -> SmtpServer {
        SmtpServer::start_on(free_port(), mode)
    }

    pub fn start_on(addr: SocketAddr, mode: Mode) -> SmtpServer {
        let listener = TcpListener::bind(addr).expect("bind the SMTP server");
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            thread::spawn(move || {
                while !shared.stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let shared = shared.clone();
                            thread::spawn(move || serve(stream, mode, &shared));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        SmtpServer {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `smtp://127.0.0.1:PORT?tls=none`.
    pub fn url(&self) -> String {
        format!("smtp://{}?tls=none", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn recipients_seen(&self) -> usize {
        self.shared.recipients.load(Ordering::SeqCst)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Recorder {
    mode: Mode,
    shared: Arc<Shared>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Response {
        self.shared.recipients.fetch_add(1, Ordering::SeqCst);
        match self.mode {
            Mode::Accept => {
                self.to.push(to.to_string());
                response::OK
            }
            Mode::Refuse => response::NO_MAILBOX,
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.shared.received.lock().unwrap().push(Received {
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        });
        response::OK
    }
}

fn serve(stream: TcpStream, mode: Mode, shared: &Arc<Shared>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let peer = stream.peer_addr().map(|a| a.ip()).unwrap();
    let recorder = Recorder {
        mode,
        shared: shared.clone(),
        to: Vec::new(),
        data: Vec::new(),
    };
    let mut session = SessionBuilder::new("smtp.test").build(peer, recorder);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    if session.greeting().write_to(&mut writer).is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = session.process(&line);
        match answer.action {
            Action::NoReply => continue,
            Action::Close => {
                let _ = answer.write_to(&mut writer);
                let _ = writer.flush();
                return;
            }
            Action::Reply | Action::UpgradeTls => {
                if answer.write_to(&mut writer).is_err() {
                    return;
                }
            }
        }
    }
}
