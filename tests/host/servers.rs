//! Real servers for the tests, each on a free loopback port and stopped when dropped:
//! `redis-server` and Webdis (Debian's packages; `make setup` installs them).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::{command, exchange};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|err| panic!("no free loopback port: {err}"))
}

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {program} ({err}); run `make setup`"))
}

/// Waits until `ready`; false if `child` exits first, as a server does whose port another
/// test's server took between the pick and the bind (that server would seem ready instead).
fn started(what: &str, child: &mut Child, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if ready() {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not start within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tries `start` on new free ports until one starts.
fn on_a_free_port<T>(what: &str, mut start: impl FnMut(u16) -> Option<T>) -> T {
    (0..5)
        .find_map(|_| start(free_port()))
        .unwrap_or_else(|| panic!("{what} exited at once on five free ports"))
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap_or_else(|err| panic!("kill -{name}: {err}"));
    assert!(status.success(), "kill -{name} {} failed", child.id());
}

pub struct RedisServer {
    pub address: SocketAddr,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        on_a_free_port("redis-server", |port| {
            let mut server = Self {
                address: SocketAddr::from(([127, 0, 0, 1], port)),
                child: None,
            };
            server.launch().then_some(server)
        })
    }

    /// Starts redis-server on `self.address`; false if it exited (the port was taken).
    fn launch(&mut self) -> bool {
        let port = self.address.port().to_string();
        let mut child = spawn(
            "redis-server",
            &[
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        );
        let address = self.address;
        let up = started("redis-server", &mut child, || {
            Self::command_at(address, &["PING"]).is_ok()
        });
        self.child = Some(child);
        up
    }

    fn try_command(&self, arguments: &[&str]) -> std::io::Result<Vec<u8>> {
        Self::command_at(self.address, arguments)
    }

    fn command_at(address: SocketAddr, arguments: &[&str]) -> std::io::Result<Vec<u8>> {
        let mut socket = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        exchange(&mut socket, &command(arguments))
    }

    /// Runs a command (`["SET", "k", "v"]`) and returns its raw RESP reply.
    pub fn command(&self, arguments: &[&str]) -> Vec<u8> {
        self.try_command(arguments)
            .unwrap_or_else(|err| panic!("redis {arguments:?}: {err}"))
    }

    pub fn set(&self, key: &str, value: &str) {
        assert_eq!(self.command(&["SET", key, value]), b"+OK\r\n");
    }

    /// Stops the server: connections are refused until `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "redis-server could not restart on {}: its port was taken meanwhile",
            self.address
        );
    }

    /// Freezes the server (SIGSTOP): connections are accepted, nothing is answered.
    pub fn freeze(&self) {
        signal(
            self.child.as_ref().expect("redis-server is running"),
            "STOP",
        );
    }

    pub fn thaw(&self) {
        signal(
            self.child.as_ref().expect("redis-server is running"),
            "CONT",
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.stop();
    }
}

/// Webdis in front of a Redis server: `GET /MGET/k1/k2.json` → `{"MGET":["90",null]}`.
pub struct Webdis {
    pub address: SocketAddr,
    child: Child,
    config: PathBuf,
}

impl Webdis {
    pub fn start(redis: &RedisServer) -> Self {
        on_a_free_port("webdis", |port| Self::start_on(redis, port))
    }

    fn start_on(redis: &RedisServer, port: u16) -> Option<Self> {
        let config =
            std::env::temp_dir().join(format!("ai-lb-webdis-{}-{port}.json", std::process::id()));
        let settings = serde_json::json!({
            "redis_host": "127.0.0.1",
            "redis_port": redis.address.port(),
            "http_host": "127.0.0.1",
            "http_port": port,
            "threads": 1,
            "daemonize": false,
            "database": 0,
            "verbosity": 0,
            "logfile": "/dev/null"
        });
        std::fs::write(&config, settings.to_string())
            .unwrap_or_else(|err| panic!("writing {}: {err}", config.display()));
        let child = spawn("webdis", &[config.to_str().expect("temp path is UTF-8")]);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let mut webdis = Self {
            address,
            child,
            config,
        };
        started("webdis", &mut webdis.child, || webdis_pings(address)).then_some(webdis)
    }

    /// Waits until Webdis reaches Redis again (after a Redis restart, say).
    pub fn wait_until_ready(&self) {
        wait_until("webdis", || webdis_pings(self.address));
    }

    /// Freezes Webdis (SIGSTOP): it accepts connections and answers nothing.
    pub fn freeze(&self) {
        signal(&self.child, "STOP");
    }

    pub fn thaw(&self) {
        signal(&self.child, "CONT");
    }
}

/// Webdis answers only once it reaches Redis: `GET /PING` → `{"PING":[true,"PONG"]}`.
fn webdis_pings(address: SocketAddr) -> bool {
    let Ok(mut socket) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
    let request = b"GET /PING HTTP/1.1\r\nhost: webdis\r\nconnection: close\r\n\r\n";
    let mut reply = Vec::new();
    socket.write_all(request).is_ok()
        && socket.read_to_end(&mut reply).is_ok()
        && String::from_utf8_lossy(&reply).contains("PONG")
}

impl Drop for Webdis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}
