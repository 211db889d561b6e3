//! Dispatched HTTP calls (`proxy_http_call`): what the filter asked for, and the replies the
//! host delivers, either written by the test or fetched from the real server behind the cluster.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::vm::CallResponse;

#[derive(Debug, Clone)]
pub struct HttpCall {
    pub token: u32,
    /// The context that dispatched the call; the reply goes back to it.
    pub context_id: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl HttpCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn new(status: u16, body: &[u8]) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    pub(super) fn into_call_response(self) -> CallResponse {
        let mut headers = vec![(":status".to_string(), self.status.to_string())];
        headers.extend(self.headers);
        CallResponse {
            headers,
            body: self.body,
            trailers: Vec::new(),
        }
    }
}

/// Sends the call to `address` over HTTP/1.1 and reads the whole reply, within the call's
/// timeout. Failures come back as Envoy's async client reports them: its own 503 or 504.
pub fn perform(address: SocketAddr, call: &HttpCall) -> HttpReply {
    match exchange(address, call) {
        Ok(reply) => reply,
        Err(err) if is_timeout(&err) => HttpReply::new(504, b"upstream request timeout"),
        Err(_) => HttpReply::new(
            503,
            b"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure",
        ),
    }
}

fn is_timeout(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn exchange(address: SocketAddr, call: &HttpCall) -> std::io::Result<HttpReply> {
    let timeout = call.timeout.max(Duration::from_millis(1));
    let mut socket = TcpStream::connect_timeout(&address, timeout)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    let method = call.header(":method").unwrap_or("GET");
    let path = call.header(":path").unwrap_or("/");
    let authority = call.header(":authority").unwrap_or("localhost");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
    for (name, value) in &call.headers {
        if !name.starts_with(':') {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    request.push_str(&format!("content-length: {}\r\n\r\n", call.body.len()));
    socket.write_all(request.as_bytes())?;
    socket.write_all(&call.body)?;
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unreadable HTTP reply: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<HttpReply> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    let headers = headers
        .into_iter()
        .filter(|(name, _)| name != "transfer-encoding" && name != "connection")
        .collect();
    Some(HttpReply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
