//! What the server knows of each open connection: whether it is serving a request, when
//! it last became idle and when the next request's first byte came — and the registry
//! of open connections that enforces the caps.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::limits::ServerLimits;

/// The activity of one connection, shared by its IO, its requests and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    /// Requests being served (between their head and the end of their answer).
    busy: AtomicU32,
    /// Milliseconds since `base` at which the connection last became idle.
    idle_since: AtomicU64,
    /// Milliseconds since `base` + 1 of the first byte read since then; 0: none yet.
    first_byte: AtomicU64,
    served: AtomicU64,
    changed: Notify,
}

/// Why a watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// No complete request head in time.
    Header,
    /// Idle between requests for too long.
    Idle,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(0),
            served: AtomicU64::new(0),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    /// Between requests: it may be closed to make room without losing anything.
    pub(crate) fn is_between_requests(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    fn has_served(&self) -> bool {
        self.served.load(Ordering::SeqCst) > 0
    }

    fn read(&self) {
        if self.busy.load(Ordering::SeqCst) == 0 && self.first_byte.load(Ordering::SeqCst) == 0 {
            self.first_byte.store(self.now_ms() + 1, Ordering::SeqCst);
            self.changed.notify_one();
        }
    }

    /// A request head arrived; the guard ends the request when its answer is sent.
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
        RequestGuard {
            activity: self.clone(),
        }
    }

    /// Waits until the connection breaks a time limit while no request is served.
    pub(crate) async fn watchdog(&self, limits: &ServerLimits) -> Cut {
        loop {
            let notified = self.changed.notified();
            if self.busy.load(Ordering::SeqCst) > 0 {
                notified.await;
                continue;
            }
            let idle_since = self.idle_since.load(Ordering::SeqCst);
            let first_byte = self.first_byte.load(Ordering::SeqCst);
            let (deadline, cut) = if self.served.load(Ordering::SeqCst) == 0 {
                // The first request's head counts from the accept.
                (self.at(idle_since) + limits.header_timeout(), Cut::Header)
            } else if first_byte > 0 {
                (
                    self.at(first_byte - 1) + limits.header_timeout(),
                    Cut::Header,
                )
            } else {
                (self.at(idle_since) + limits.idle_timeout(), Cut::Idle)
            };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    if self.busy.load(Ordering::SeqCst) == 0
                        && self.idle_since.load(Ordering::SeqCst) == idle_since
                        && self.first_byte.load(Ordering::SeqCst) == first_byte
                    {
                        return cut;
                    }
                }
                _ = notified => {}
            }
        }
    }
}

/// Ends a request when dropped (with the answer's body, or with the request's future).
#[derive(Debug)]
pub(crate) struct RequestGuard {
    activity: Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.activity;
        activity.first_byte.store(0, Ordering::SeqCst);
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::SeqCst);
        activity.served.fetch_add(1, Ordering::SeqCst);
        activity.busy.fetch_sub(1, Ordering::SeqCst);
        activity.changed.notify_one();
    }
}

/// A stream that tells its connection's [`Activity`] when bytes arrive.
pub(crate) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }

    pub(crate) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Why a new connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The peer has its share of connections.
    PeerFull,
    /// The listener is full and every connection serves a request.
    Full,
}

struct Entry {
    peer: IpAddr,
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    /// By id, which is the order of acceptance: the oldest first.
    connections: BTreeMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.connections.remove(&id)?;
        if let Some(count) = self.per_peer.get_mut(&entry.peer) {
            *count -= 1;
            if *count == 0 {
                self.per_peer.remove(&entry.peer);
            }
        }
        Some(entry)
    }
}

/// The open connections of one listener.
#[derive(Default)]
pub(crate) struct Registry {
    open: Mutex<Open>,
    /// How many are admitted now, for `/metrics` (set under the lock).
    gauge: Arc<AtomicU64>,
}

/// A connection's place in the registry; leaving it frees the place.
pub(crate) struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    pub(crate) activity: Arc<Activity>,
    pub(crate) evict: Arc<Notify>,
    /// Whether another connection was closed to make room.
    pub(crate) evicted_other: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        open.remove(self.id);
        self.registry.set_gauge(&open);
    }
}

impl Registry {
    /// A registry that keeps `gauge` at the number of admitted connections.
    pub(crate) fn new(gauge: Arc<AtomicU64>) -> Self {
        Self {
            open: Mutex::default(),
            gauge,
        }
    }

    fn set_gauge(&self, open: &Open) {
        self.gauge
            .store(open.connections.len() as u64, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        match self.open.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().connections.len()
    }

    /// Admits a connection from `peer` (its limit unit, see
    /// [`crate::client::limit_address`]), closing the oldest idle one if the listener is
    /// full. `peer_capped`: whether the per-peer cap applies (not to trusted proxies).
    pub(crate) fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        peer_capped: bool,
        max: usize,
        max_per_peer: usize,
    ) -> Result<Admitted, Refusal> {
        let mut open = self.lock();
        if peer_capped && open.per_peer.get(&peer).copied().unwrap_or(0) >= max_per_peer {
            return Err(Refusal::PeerFull);
        }
        let mut evicted_other = false;
        if open.connections.len() >= max {
            // Connections that never completed a request go first (silent ones are
            // what an attacker holds); then kept-alive ones; the oldest of each first.
            let idle = |entry: &&Entry| entry.activity.is_between_requests();
            let never_served = open
                .connections
                .iter()
                .find(|(_, entry)| idle(entry) && !entry.activity.has_served())
                .map(|(id, _)| *id);
            let victim = never_served
                .or_else(|| {
                    open.connections
                        .iter()
                        .find(|(_, entry)| idle(entry))
                        .map(|(id, _)| *id)
                })
                .ok_or(Refusal::Full)?;
            if let Some(entry) = open.remove(victim) {
                entry.evict.notify_one();
                evicted_other = true;
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let activity = Activity::new();
        let evict = Arc::new(Notify::new());
        open.connections.insert(
            id,
            Entry {
                peer,
                activity: activity.clone(),
                evict: evict.clone(),
            },
        );
        *open.per_peer.entry(peer).or_default() += 1;
        self.set_gauge(&open);
        Ok(Admitted {
            registry: self.clone(),
            id,
            activity,
            evict,
            evicted_other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    /// Whether `admitted` was told to go (the clock is paused: at once or never).
    async fn told_to_go(admitted: &Admitted) -> bool {
        tokio::time::timeout(Duration::from_millis(1), admitted.evict.notified())
            .await
            .is_ok()
    }

    /// 30 s for a request's header, 60 s idle between requests.
    fn timeouts_30_60() -> ServerLimits {
        ServerLimits {
            header_timeout_secs: 30,
            idle_timeout_secs: 60,
            ..ServerLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_listener_closes_the_oldest_idle_connection_never_a_busy_one() {
        let registry = Arc::new(Registry::default());
        let first = registry.admit(A, true, 2, 10).unwrap();
        let _request = first.activity.begin_request();
        let second = registry.admit(B, true, 2, 10).unwrap();
        let third = registry.admit(B, true, 2, 10).unwrap();
        assert!(third.evicted_other);
        // The second was idle: it was told to go and left the registry.
        assert!(told_to_go(&second).await, "the idle connection was evicted");
        assert_eq!(registry.len(), 2);
        let _busy = third.activity.begin_request();
        assert_eq!(registry.admit(A, true, 2, 10).err(), Some(Refusal::Full));
        drop(second);
        assert_eq!(
            registry.len(),
            2,
            "dropping an evicted one frees nothing twice"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silent_connections_make_room_before_kept_alive_ones() {
        let registry = Arc::new(Registry::default());
        let kept_alive = registry.admit(A, true, 2, 10).unwrap();
        drop(kept_alive.activity.begin_request());
        let silent = registry.admit(B, true, 2, 10).unwrap();
        let newcomer = registry.admit(B, true, 2, 10).unwrap();
        assert!(newcomer.evicted_other);
        assert!(
            told_to_go(&silent).await,
            "the silent one went, though younger"
        );
        assert!(!told_to_go(&kept_alive).await);
    }

    #[tokio::test(start_paused = true)]
    async fn one_peer_gets_its_share_only() {
        let registry = Arc::new(Registry::default());
        let held: Vec<Admitted> = (0..3)
            .map(|_| registry.admit(A, true, 100, 3).unwrap())
            .collect();
        assert_eq!(
            registry.admit(A, true, 100, 3).err(),
            Some(Refusal::PeerFull)
        );
        assert!(registry.admit(A, false, 100, 3).is_ok(), "a trusted proxy");
        assert!(registry.admit(B, true, 100, 3).is_ok());
        drop(held);
        assert!(registry.admit(A, true, 100, 3).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_cut_at_the_header_timeout() {
        let limits = timeouts_30_60();
        let activity = Activity::new();
        let start = Instant::now();
        assert_eq!(activity.watchdog(&limits).await, Cut::Header);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn trickled_bytes_do_not_extend_the_first_head() {
        let limits = ServerLimits::default();
        let activity = Activity::new();
        let watchdog = {
            let activity = activity.clone();
            let limits = limits.clone();
            tokio::spawn(async move { activity.watchdog(&limits).await })
        };
        let start = Instant::now();
        let trickler = {
            let activity = activity.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    activity.read();
                }
            })
        };
        assert_eq!(watchdog.await.unwrap(), Cut::Header);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        trickler.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn kept_alive_connections_are_cut_when_idle_and_requests_are_never_cut() {
        let limits = timeouts_30_60();
        let activity = Activity::new();
        let watchdog = {
            let activity = activity.clone();
            let limits = limits.clone();
            tokio::spawn(async move { activity.watchdog(&limits).await })
        };
        let request = activity.begin_request();
        // A request may take longer than any of the idle limits.
        tokio::time::sleep(Duration::from_secs(500)).await;
        assert!(!watchdog.is_finished());
        drop(request);
        let idle = Instant::now();
        // A new head started 10 s into the idle time must be complete 30 s later.
        tokio::time::sleep(Duration::from_secs(10)).await;
        activity.read();
        assert_eq!(watchdog.await.unwrap(), Cut::Header);
        assert_eq!(idle.elapsed(), Duration::from_secs(40));

        let activity = Activity::new();
        drop(activity.begin_request());
        let idle = Instant::now();
        assert_eq!(activity.watchdog(&limits).await, Cut::Idle);
        assert_eq!(idle.elapsed(), Duration::from_secs(60));
    }
}
