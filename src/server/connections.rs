//! Client connections: how many may be open, how long one may take to send
//! a request head, how long it may sit idle between keep-alive requests,
//! and which one gives way when the cap is reached. A connection is busy
//! from the moment a request reaches the router until its response body
//! is finished; it is idle otherwise. Idle connections are closed at their
//! deadline (`header_read_timeout` before their first request,
//! `idle_timeout` after one), and at the cap the connection idle the
//! longest is closed for the new one, so half-sent request heads and silent
//! connections can never crowd out a real client. The service wrapper also
//! gives each request its client address and turns a panicking handler
//! into a 500.

use super::error::ApiError;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Limits of client connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max: usize,
    /// Deadline for the first request head of a connection.
    pub header_read_timeout: Duration,
    /// Deadline for the next request on an idle keep-alive connection.
    pub idle_timeout: Duration,
}

/// One connection's state, shared by its task and its requests.
struct Conn {
    busy: AtomicUsize,
    /// Milliseconds since [`Connections::epoch`] when it last became idle.
    idle_since: AtomicU64,
    served: AtomicBool,
    close: Notify,
}

#[derive(Default)]
struct Counters {
    refused: AtomicU64,
    evicted: AtomicU64,
    timed_out: AtomicU64,
}

/// Every open connection.
pub struct Connections {
    limits: ConnectionLimits,
    epoch: Instant,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    counters: Counters,
}

/// A connection's registration; removes it when dropped.
pub struct Admitted {
    id: u64,
    conn: Arc<Conn>,
    registry: Arc<Connections>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut open) = self.registry.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl Connections {
    /// An empty registry.
    pub fn new(limits: ConnectionLimits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            epoch: Instant::now(),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            counters: Counters::default(),
        })
    }

    /// The limits it enforces.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Registers a new connection. At the cap, the connection idle the
    /// longest is told to close; when every connection is busy the new
    /// one is refused (`None`).
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut open = self.open.lock().ok()?;
        if open.len() >= self.limits.max {
            let victim = open
                .iter()
                .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, c)| c.idle_since.load(Ordering::Relaxed))
                .map(|(id, c)| (*id, c.clone()));
            match victim {
                Some((id, c)) => {
                    open.remove(&id);
                    c.close.notify_one();
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            served: AtomicBool::new(false),
            close: Notify::new(),
        });
        open.insert(id, conn.clone());
        Some(Admitted {
            id,
            conn,
            registry: self.clone(),
        })
    }

    /// Connections open now.
    pub fn open_count(&self) -> usize {
        self.open.lock().map_or(0, |o| o.len())
    }

    /// Prometheus text of the connection counters.
    pub fn metrics_text(&self) -> String {
        let c = &self.counters;
        format!(
            "# HELP cpixd_connections_open Client connections open now.\n\
             # TYPE cpixd_connections_open gauge\n\
             cpixd_connections_open {}\n\
             # HELP cpixd_connections_closed_total Client connections cpixd closed, by reason.\n\
             # TYPE cpixd_connections_closed_total counter\n\
             cpixd_connections_closed_total{{reason=\"idle_timeout\"}} {}\n\
             cpixd_connections_closed_total{{reason=\"evicted_at_cap\"}} {}\n\
             cpixd_connections_closed_total{{reason=\"refused_at_cap\"}} {}\n",
            self.open_count(),
            c.timed_out.load(Ordering::Relaxed),
            c.evicted.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
        )
    }
}

impl Admitted {
    /// The instant an idle connection must have started a request by, or
    /// `None` while it is busy.
    fn deadline(&self) -> Option<Instant> {
        if self.conn.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let limits = &self.registry.limits;
        let allowed = if self.conn.served.load(Ordering::Relaxed) {
            limits.idle_timeout
        } else {
            limits.header_read_timeout
        };
        let since = Duration::from_millis(self.conn.idle_since.load(Ordering::Relaxed));
        Some(self.registry.epoch + since + allowed)
    }

    /// Drives `conn` (the HTTP connection future) until it ends, its idle
    /// deadline passes or the registry evicts it; a connection cut short is
    /// dropped, which closes it.
    pub async fn supervise<F: Future>(&self, conn: F) {
        tokio::pin!(conn);
        loop {
            let wake = match self.deadline() {
                Some(d) => d,
                // Busy: look again after a while.
                None => Instant::now() + self.registry.limits.idle_timeout,
            };
            tokio::select! {
                _ = &mut conn => return,
                () = self.conn.close.notified() => return,
                () = tokio::time::sleep_until(wake.into()) => {
                    if self.deadline().is_some_and(|d| d <= Instant::now()) {
                        self.registry.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
    }

    /// Marks the connection busy until the returned guard is dropped.
    fn busy(&self) -> Busy {
        self.conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy {
            conn: self.conn.clone(),
            registry: self.registry.clone(),
        }
    }
}

/// A request in flight on a connection.
struct Busy {
    conn: Arc<Conn>,
    registry: Arc<Connections>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.conn.served.store(true, Ordering::Relaxed);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it is finished.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A future that turns a panic while it is polled into `Err`.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

fn internal_error() -> Response<Body> {
    tracing::error!("a request handler panicked; answered 500");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

/// Serves one request of `conn` with `router`: the client address as
/// [`ConnectInfo`], the connection busy until the response body ends, and
/// a generic 500 if the handler panics.
pub fn call<B>(
    router: &axum::Router,
    conn: &Admitted,
    peer: SocketAddr,
    mut req: Request<B>,
) -> impl Future<Output = Result<Response<Body>, std::convert::Infallible>>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    use tower::Service;
    req.extensions_mut().insert(ConnectInfo(peer));
    let busy = conn.busy();
    let mut router = router.clone();
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        router.call(req.map(Body::new))
    }));
    async move {
        let resp = match started {
            Ok(fut) => match CatchPanic(Box::pin(fut)).await {
                Ok(Ok(r)) => r,
                Ok(Err(never)) => match never {},
                Err(()) => internal_error(),
            },
            Err(_) => internal_error(),
        };
        Ok(resp.map(|inner| Body::new(Tracked { inner, _busy: busy })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> ConnectionLimits {
        ConnectionLimits {
            max,
            header_read_timeout: Duration::from_millis(50),
            idle_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_gives_way_and_busy_ones_stay() {
        let reg = Connections::new(limits(2));
        let a = reg.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = reg.admit().unwrap();
        let _busy_b = b.busy();
        // `a` is idle the longest: it is evicted for `c`.
        let c = reg.admit().unwrap();
        assert_eq!(reg.open_count(), 2);
        assert!(!reg.open.lock().unwrap().contains_key(&a.id));
        let _busy_c = c.busy();
        // Everything left is busy: the next connection is refused.
        assert!(reg.admit().is_none());
        assert!(reg.metrics_text().contains("reason=\"refused_at_cap\"} 1"));
        drop(b);
        assert_eq!(reg.open_count(), 1);
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_at_its_deadline_but_not_while_busy() {
        let reg = Connections::new(limits(8));
        let idle = reg.admit().unwrap();
        let t = Instant::now();
        idle.supervise(std::future::pending::<()>()).await;
        assert!(t.elapsed() >= Duration::from_millis(50));
        let busy = reg.admit().unwrap();
        let guard = busy.busy();
        let cut = tokio::time::timeout(
            Duration::from_millis(200),
            busy.supervise(std::future::pending::<()>()),
        )
        .await;
        assert!(cut.is_err(), "a busy connection must not be cut");
        drop(guard);
        assert!(busy.deadline().is_some());
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_500() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let router = axum::Router::new().route("/", axum::routing::get(boom));
        let reg = Connections::new(limits(8));
        let conn = reg.admit().unwrap();
        let req = Request::get("/").body(Body::empty()).unwrap();
        let resp = call(&router, &conn, "127.0.0.1:1".parse().unwrap(), req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // The connection is idle again once the answer is consumed.
        drop(resp);
        assert_eq!(conn.conn.busy.load(Ordering::Acquire), 0);
    }
}
