//! Helpers of the fault and hostile-input suite (issue #10): a de-duplicating AMQP
//! receiver that counts duplicates by message id, a misbehaving HTTP procedure on
//! loopback (hang, reset, slow, garbage), a seeded random source for kill points, a
//! size-limited data directory (tmpfs) and the one-line summaries the suite prints.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

/// Prints `SUMMARY <class>: k=v …` on standard output (for `--nocapture`) and straight
/// to the standard error file (past the test harness's capture), so the line shows in
/// every CI log whether or not the test passes.
pub fn summary(class: &str, fields: &[(&str, String)]) -> String {
    let line = format!(
        "SUMMARY {class}: {}",
        fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("{line}");
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    line
}

/// Counts as `key:count,key:count` (answers by status code), for a summary line.
pub fn counts<K: std::fmt::Display>(counts: &BTreeMap<K, usize>) -> String {
    counts
        .iter()
        .map(|(key, n)| format!("{key}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A small deterministic random source (SplitMix64): the seed is printed, so a failing
/// run can be repeated with `KOPPLUNG_FAULT_SEED=<seed>`.
pub struct Rng(u64);

impl Rng {
    /// `KOPPLUNG_FAULT_SEED` if set, otherwise from the clock.
    pub fn from_env() -> (Self, u64) {
        let seed = std::env::var("KOPPLUNG_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        (Self(seed), seed)
    }

    pub fn seeded(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// What a de-duplicating receiver saw: arrivals per message id, and the message ids per
/// application (AMQP `correlation_id` / the HTTP header `x-kopplung-application-id`).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub by_message: BTreeMap<String, u32>,
    pub by_application: BTreeMap<String, BTreeSet<String>>,
}

impl Tally {
    pub fn record(&mut self, message_id: &str, application_id: &str) {
        *self.by_message.entry(message_id.to_owned()).or_default() += 1;
        self.by_application
            .entry(application_id.to_owned())
            .or_default()
            .insert(message_id.to_owned());
    }

    /// Arrivals of a message id already seen: what a de-duplicating receiver drops.
    pub fn redelivered(&self) -> u32 {
        self.by_message.values().map(|n| n - 1).sum()
    }

    /// Applications that arrived under more than one message id: a receiver that
    /// de-duplicates by message id would see these twice. Must be 0.
    pub fn duplicates_after_dedup(&self) -> usize {
        self.by_application.values().filter(|m| m.len() > 1).count()
    }
}

/// A consumer on a real RabbitMQ queue that counts every message by its message id.
pub struct AmqpReceiver {
    tally: Arc<Mutex<Tally>>,
    task: tokio::task::JoinHandle<()>,
    pub queue: String,
}

impl AmqpReceiver {
    /// Consumes `queue` (waiting until the hub has declared it).
    pub async fn start(queue: &str) -> Self {
        let tally: Arc<Mutex<Tally>> = Arc::default();
        let connection = crate::amqp().await;
        let task = {
            let (tally, queue) = (tally.clone(), queue.to_owned());
            tokio::spawn(async move {
                loop {
                    let Ok(channel) = connection.create_channel().await else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    let consumer = channel
                        .basic_consume(
                            queue.as_str().into(),
                            "kopplung-fault-receiver".into(),
                            BasicConsumeOptions {
                                no_ack: true,
                                ..BasicConsumeOptions::default()
                            },
                            FieldTable::default(),
                        )
                        .await;
                    let Ok(mut consumer) = consumer else {
                        // Not declared yet (the hub declares on its first delivery).
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    while let Some(Ok(delivery)) = consumer.next().await {
                        let properties = &delivery.properties;
                        let message_id = properties
                            .message_id()
                            .as_ref()
                            .map(|s| s.to_string())
                            .unwrap_or_default();
                        let application_id = properties
                            .correlation_id()
                            .as_ref()
                            .map(|s| s.to_string())
                            .unwrap_or_default();
                        tally.lock().await.record(&message_id, &application_id);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Self {
            tally,
            task,
            queue: queue.to_owned(),
        }
    }

    pub async fn tally(&self) -> Tally {
        self.tally.lock().await.clone()
    }

    /// Stops consuming and deletes the queue.
    pub async fn finish(self) {
        self.task.abort();
        let connection = crate::amqp().await;
        crate::delete_queue(&connection, &self.queue).await;
    }
}

/// How the misbehaving procedure answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 202 at once.
    Accept,
    /// Reads the request and never answers (the hub's timeout must cut it off).
    Hang,
    /// Reads the request, then resets the connection (RST).
    Reset,
    /// Answers 202 after the delay (if it is beyond the hub's timeout, the hub has given
    /// up already: the procedure took the message, the hub will send it again).
    Slow(Duration),
    /// Answers bytes that are not HTTP, then closes.
    Garbage,
    /// 503 Service Unavailable.
    ServerError,
}

impl Behaviour {
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Accept => "accept",
            Behaviour::Hang => "hang",
            Behaviour::Reset => "reset",
            Behaviour::Slow(_) => "slow",
            Behaviour::Garbage => "garbage",
            Behaviour::ServerError => "server_error",
        }
    }
}

/// Decides the behaviour for a request: (message id, its attempt number from 1, how many
/// distinct message ids the procedure had seen before this one's first request).
pub type Plan = Arc<dyn Fn(&str, u32, usize) -> Behaviour + Send + Sync>;

#[derive(Default)]
struct ProcedureState {
    attempts: BTreeMap<String, u32>,
    order: BTreeMap<String, usize>,
    tally: Tally,
    behaviours: BTreeMap<&'static str, u32>,
}

/// A real HTTP server on loopback (raw TCP, so it can misbehave below HTTP) playing a
/// specialist procedure that fails in the ways `plan` says.
pub struct FaultyProcedure {
    pub url: String,
    state: Arc<Mutex<ProcedureState>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProcedure {
    pub async fn start(plan: Plan) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the procedure");
        let url = format!(
            "http://{}/fachverfahren/eingang",
            listener.local_addr().expect("address")
        );
        let state: Arc<Mutex<ProcedureState>> = Arc::default();
        let task = {
            let state = state.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve_connection(stream, plan.clone(), state.clone()));
                }
            })
        };
        Self { url, state, task }
    }

    /// Messages the procedure took (answered 2xx, whether the hub heard it or not).
    pub async fn tally(&self) -> Tally {
        self.state.lock().await.tally.clone()
    }

    /// Requests per behaviour.
    pub async fn behaviours(&self) -> BTreeMap<&'static str, u32> {
        self.state.lock().await.behaviours.clone()
    }

    /// Distinct message ids that reached the procedure at all.
    pub async fn seen(&self) -> usize {
        self.state.lock().await.attempts.len()
    }
}

impl Drop for FaultyProcedure {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One kept-alive connection: requests one after another until one misbehaves.
async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    plan: Plan,
    state: Arc<Mutex<ProcedureState>>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some((headers, body_start)) = read_head(&mut stream, &mut buffer).await else {
            return;
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        // The rest of the body.
        while buffer.len() < body_start + length {
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..body_start + length);
        let message_id = header("x-kopplung-message-id");
        let application_id = header("x-kopplung-application-id");
        let behaviour = {
            let mut state = state.lock().await;
            let known = state.order.len();
            let order = *state.order.entry(message_id.clone()).or_insert(known);
            let attempt = {
                let n = state.attempts.entry(message_id.clone()).or_default();
                *n += 1;
                *n
            };
            let behaviour = plan(&message_id, attempt, order);
            *state.behaviours.entry(behaviour.name()).or_default() += 1;
            behaviour
        };
        const ACCEPTED: &[u8] = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
        match behaviour {
            Behaviour::Accept | Behaviour::Slow(_) => {
                if let Behaviour::Slow(delay) = behaviour {
                    tokio::time::sleep(delay).await;
                }
                // Taken: from here on the procedure has the message.
                state
                    .lock()
                    .await
                    .tally
                    .record(&message_id, &application_id);
                if stream.write_all(ACCEPTED).await.is_err() {
                    return;
                }
            }
            Behaviour::ServerError => {
                let answer = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
            Behaviour::Hang => {
                // Until the hub gives up and closes (or a minute passes).
                let mut sink = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(60), async {
                    while let Ok(n) = stream.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
                return;
            }
            Behaviour::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            Behaviour::Garbage => {
                let _ = stream
                    .write_all(b"\x00\xff\xfeKEIN HTTP <xml?>\r\n\r\n\x7f\x80garbage")
                    .await;
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// Reads a request head; the header names lower-cased, and where the body starts.
async fn read_head(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
) -> Option<(Vec<(String, String)>, usize)> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let (k, v) = line.split_once(':')?;
                    Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                })
                .collect();
            return Some((headers, end + 4));
        }
        let mut chunk = [0u8; 8 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A size-limited tmpfs mounted over a directory (the hub's data directory), with the
/// directory's files copied in; unmounted (lazily, so it works while files are open) when
/// dropped. Needs root, as CI and the developers' machines run.
pub struct SmallDisk {
    pub path: PathBuf,
}

impl SmallDisk {
    pub fn mount_over(dir: &Path, size: &str) -> Self {
        let saved = tempfile::tempdir().expect("temp dir");
        crate::copy_dir(dir, saved.path());
        crate::run_ok(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(dir),
            &format!("mounting a {size} tmpfs over the data directory (the suite runs as root)"),
        );
        let disk = Self {
            path: dir.to_owned(),
        };
        crate::copy_dir(saved.path(), dir);
        disk
    }

    /// Fills the disk with a file until the file system says it is full; returns the file.
    pub fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0x55u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        // Smaller pieces into the last free blocks.
        while file.write_all(&chunk[..512]).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
    }
}
