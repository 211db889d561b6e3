//! Higress's Redis host calls, served by a real `redis-server`: `proxy_redis_init` registers a
//! cluster, `proxy_redis_call` sends the filter's raw RESP query at once, and the reply waits in
//! the host until the test delivers it (`Vm::deliver_redis_replies`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The callback's status for a network failure and for a timeout. Higress documents only that
/// 0 is success and a failure comes with size 0; the filter must treat any non-zero alike.
pub const STATUS_NETWORK_ERROR: u32 = 1;
pub const STATUS_TIMEOUT: u32 = 2;

#[derive(Debug, Clone)]
pub enum Outcome {
    Reply(Vec<u8>),
    Refused(String),
    TimedOut,
}

impl Outcome {
    pub fn status_and_reply(&self) -> (u32, Vec<u8>) {
        match self {
            Outcome::Reply(bytes) => (0, bytes.clone()),
            Outcome::Refused(_) => (STATUS_NETWORK_ERROR, Vec::new()),
            Outcome::TimedOut => (STATUS_TIMEOUT, Vec::new()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RedisCall {
    pub token: u32,
    pub context_id: u32,
    /// The upstream string as the filter passed it (cluster name, maybe `?db=N`).
    pub upstream: String,
    pub query: Vec<u8>,
    pub outcome: Outcome,
}

impl RedisCall {
    /// The query's arguments, decoded from RESP (`["MGET", "k1", "k2"]`).
    pub fn arguments(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.query);
        text.split("\r\n")
            .filter(|part| !part.is_empty() && !part.starts_with('*') && !part.starts_with('$'))
            .map(str::to_string)
            .collect()
    }
}

/// One worker's connection to one cluster, opened on first use and dropped after any failure.
pub struct RedisConnection {
    address: SocketAddr,
    username: String,
    password: String,
    database: u32,
    timeout: Duration,
    socket: Option<TcpStream>,
}

impl RedisConnection {
    pub fn new(
        address: SocketAddr,
        username: String,
        password: String,
        database: u32,
        timeout: Duration,
    ) -> Self {
        Self {
            address,
            username,
            password,
            database,
            timeout: timeout.max(Duration::from_millis(1)),
            socket: None,
        }
    }

    pub fn call(&mut self, query: &[u8]) -> Outcome {
        let result = self.exchange_on_open_socket(query);
        match result {
            Ok(reply) => Outcome::Reply(reply),
            Err(err) => {
                self.socket = None;
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    Outcome::TimedOut
                } else {
                    Outcome::Refused(err.to_string())
                }
            }
        }
    }

    fn exchange_on_open_socket(&mut self, query: &[u8]) -> std::io::Result<Vec<u8>> {
        if self.socket.is_none() {
            let mut socket = TcpStream::connect_timeout(&self.address, self.timeout)?;
            socket.set_read_timeout(Some(self.timeout))?;
            socket.set_write_timeout(Some(self.timeout))?;
            if !self.password.is_empty() {
                let mut auth = vec!["AUTH"];
                if !self.username.is_empty() {
                    auth.push(&self.username);
                }
                auth.push(&self.password);
                exchange(&mut socket, &command(&auth))?;
            }
            if self.database != 0 {
                exchange(
                    &mut socket,
                    &command(&["SELECT", &self.database.to_string()]),
                )?;
            }
            self.socket = Some(socket);
        }
        match self.socket.as_mut() {
            Some(socket) => exchange(socket, query),
            None => Err(std::io::Error::other("no socket")),
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn command(arguments: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", arguments.len()).into_bytes();
    for argument in arguments {
        out.extend_from_slice(format!("${}\r\n{argument}\r\n", argument.len()).as_bytes());
    }
    out
}

/// Sends one command and reads exactly one complete RESP reply.
pub fn exchange(socket: &mut TcpStream, query: &[u8]) -> std::io::Result<Vec<u8>> {
    socket.write_all(query)?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(length) = complete_length(&reply, 0) {
            reply.truncate(length);
            return Ok(reply);
        }
        let read = socket.read(&mut chunk)?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "Redis closed the connection mid-reply",
            ));
        }
        reply.extend_from_slice(&chunk[..read]);
    }
}

/// The length of the complete RESP value starting at `at`, if all of it has arrived.
fn complete_length(bytes: &[u8], at: usize) -> Option<usize> {
    let line_end = at + bytes.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(bytes.get(at + 1..line_end)?).ok()?;
    let after_line = line_end + 2;
    match bytes.get(at)? {
        b'+' | b'-' | b':' => Some(after_line),
        b'$' => {
            let length: i64 = header.parse().ok()?;
            if length < 0 {
                return Some(after_line);
            }
            let end = after_line + length as usize + 2;
            (bytes.len() >= end).then_some(end)
        }
        b'*' => {
            let count: i64 = header.parse().ok()?;
            let mut end = after_line;
            for _ in 0..count.max(0) {
                end = complete_length(bytes, end)?;
            }
            Some(end)
        }
        _ => None,
    }
}
