//! The systemd readiness protocol (`sd_notify(3)`): one datagram of
//! newline-separated `KEY=VALUE` assignments sent to the socket that systemd
//! names in `$NOTIFY_SOCKET`. With `Type=notify`, systemd counts the service as
//! started only on `READY=1` (so units ordered after it wait for the bound
//! socket), and `STOPPING=1` tells it a shutdown is under way.
//!
//! Written against std instead of libsystemd: the protocol is one `sendto`, and
//! the crate forbids unsafe code and avoids C dependencies.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

/// How long a send may block. systemd drains its notification socket at once;
/// a stuck receiver must not stall start-up or a drain, and a lost status
/// message costs less than a hung service.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends `state` (e.g. "READY=1\nSTATUS=listening on 127.0.0.1:8080" or "STOPPING=1") to the datagram socket named by
/// `$NOTIFY_SOCKET`, if set; a path, or an abstract name starting with '@'. A no-op when unset. Errors are returned, not panicked.
///
/// As in `sd_notify(3)`, the address must be absolute (`/run/systemd/notify`)
/// or abstract (`@name`, the `@` standing for the leading NUL byte); anything
/// else, an empty value included, is `InvalidInput`. The caller passes
/// `std::env::var_os("NOTIFY_SOCKET").as_deref()`; the variable is read by
/// the caller rather than here so tests never touch the process environment.
pub fn notify(socket: Option<&OsStr>, state: &str) -> io::Result<()> {
    let Some(socket) = socket else {
        return Ok(());
    };
    let sender = UnixDatagram::unbound()?;
    sender.set_write_timeout(Some(SEND_TIMEOUT))?;
    let bytes = socket.as_encoded_bytes();
    let sent = match bytes.first() {
        Some(b'/') => sender.send_to(state.as_bytes(), Path::new(socket))?,
        Some(b'@') => send_to_abstract(&sender, &bytes[1..], state)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor an abstract name (@…)",
            ));
        }
    };
    // A datagram is sent whole or not at all; anything else is a broken socket.
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the notification was truncated",
        ));
    }
    Ok(())
}

/// Abstract socket names are a Linux feature (unix(7)); systemd only runs there.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_to_abstract(sender: &UnixDatagram, name: &[u8], state: &str) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;

    let address = SocketAddr::from_abstract_name(name)?;
    sender.send_to_addr(state.as_bytes(), &address)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_to_abstract(_: &UnixDatagram, _: &[u8], _: &str) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// Bounds every receive, so a failing test fails instead of hanging.
    fn receiver(socket: UnixDatagram) -> UnixDatagram {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn unset_is_a_no_op() {
        assert!(notify(None, "READY=1").is_ok());
    }

    #[test]
    fn sends_to_a_socket_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = receiver(UnixDatagram::bind(&path).unwrap());

        let ready = "READY=1\nSTATUS=listening on 127.0.0.1:8080";
        notify(Some(path.as_os_str()), ready).unwrap();
        assert_eq!(receive(&socket), ready);
        notify(Some(path.as_os_str()), "STOPPING=1").unwrap();
        assert_eq!(receive(&socket), "STOPPING=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_name() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::SocketAddr;
        use std::time::{SystemTime, UNIX_EPOCH};

        // The abstract namespace is shared by the whole network namespace, so
        // the name must not collide with a parallel run of this test.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("latchkey-notify-test-{}-{nanos}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = receiver(UnixDatagram::bind_addr(&address).unwrap());

        let socket_var = OsString::from(format!("@{name}"));
        notify(Some(&socket_var), "READY=1").unwrap();
        assert_eq!(receive(&socket), "READY=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody-listens.sock");
        let err = notify(Some(path.as_os_str()), "READY=1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn relative_or_empty_addresses_are_refused() {
        for bad in ["", "notify.sock", "run/systemd/notify"] {
            let err = notify(Some(OsStr::new(bad)), "READY=1").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn a_path_that_is_not_a_socket_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(notify(Some(file.path().as_os_str()), "READY=1").is_err());
    }
}
