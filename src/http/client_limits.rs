//! What one client may cost the service, whatever it does: a request body must keep arriving at
//! `BODY_MIN_BYTES_PER_SECOND`, a response must keep leaving (`WRITE_TIMEOUT_MS` without progress
//! drops it with its connection), and `MAX_CONNECTIONS` bounds the connections open at once
//! (see `startup::server`). The request deadline around all of it is in `middleware`.
//!
//! Slow request heads are cut by actix-web itself after 5 s (`client_request_timeout`), and idle
//! keep-alive connections after 5 s.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::time::{sleep_until, Instant, Sleep};

/// How long a body may take before its rate is judged (a connection's first packets may lag).
const BODY_GRACE: Duration = Duration::from_secs(1);

/// Responses larger than this are sent in pieces of this size, each piece counting as progress.
const PIECE: usize = 64 * 1024;

/// What the middleware learns of a request body's reading.
#[derive(Default)]
pub struct BodyWatch {
    started: Cell<bool>,
    finished: Cell<bool>,
    too_slow: Cell<bool>,
}

impl BodyWatch {
    /// The body arrived slower than the minimum rate, and its reading failed.
    pub fn was_too_slow(&self) -> bool {
        self.too_slow.get()
    }

    /// The handler was still reading the body: the client is the one being slow.
    pub fn is_being_received(&self) -> bool {
        self.started.get() && !self.finished.get()
    }
}

/// Wraps a request's payload so that it fails once fewer than `min_rate` bytes per second have
/// arrived since the reading began (after [`BODY_GRACE`]). A zero rate watches without limit.
pub fn pace(payload: Payload, min_rate: u64, watch: Rc<BodyWatch>) -> Payload {
    let paced = Paced {
        inner: payload,
        min_rate,
        watch,
        began: None,
        received: 0,
        timer: None,
    };
    Payload::Stream {
        payload: Box::pin(paced),
    }
}

struct Paced {
    inner: Payload,
    min_rate: u64,
    watch: Rc<BodyWatch>,
    began: Option<Instant>,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Paced {
    /// When the body falls below the minimum rate if nothing more arrives.
    fn due(&self, began: Instant) -> Instant {
        let allowed = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        began + BODY_GRACE + allowed
    }
}

impl Stream for Paced {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let began = *this.began.get_or_insert_with(Instant::now);
        this.watch.started.set(true);
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.received += bytes.len() as u64;
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(None) => {
                this.watch.finished.set(true);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Pending if this.min_rate == 0 => Poll::Pending,
            Poll::Pending => {
                let due = this.due(began);
                let timer = this.timer.get_or_insert_with(|| Box::pin(sleep_until(due)));
                if timer.deadline() != due {
                    timer.as_mut().reset(due);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => {
                        this.watch.too_slow.set(true);
                        Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the request body arrived too slowly",
                        )))))
                    }
                }
            }
        }
    }
}

/// A duplicate of a client connection's socket, kept with the connection (`HttpServer::on_connect`)
/// so that a stalled response can be cut: shutting the duplicate down shuts the connection down.
pub struct ClientSocket(pub std::net::TcpStream);

impl ClientSocket {
    /// Duplicates the socket of an accepted connection, if it is TCP.
    pub fn of(connection: &dyn std::any::Any) -> Option<Rc<Self>> {
        use std::os::fd::AsFd;
        let stream = connection.downcast_ref::<actix_web::rt::net::TcpStream>()?;
        let duplicate = stream.as_fd().try_clone_to_owned().ok()?;
        Some(Rc::new(Self(std::net::TcpStream::from(duplicate))))
    }
}

/// Sends a large response in pieces and drops the connection when no piece has been taken for
/// `timeout`: a client that stops reading cannot hold the response (and its memory) for longer.
/// Small responses fit the socket's buffers and are left as they are.
pub fn watch_writes(body: BoxBody, socket: Option<Rc<ClientSocket>>, timeout: Duration) -> BoxBody {
    let (Some(socket), BodySize::Sized(size)) = (socket, body.size()) else {
        return body;
    };
    if size <= PIECE as u64 {
        return body;
    }
    let bytes = match body.try_into_bytes() {
        Ok(bytes) => bytes,
        // A sized stream of our own making: none exists today; leave it as it is.
        Err(body) => return body,
    };
    let progress = Rc::new(Cell::new(Instant::now()));
    let watchdog = {
        let progress = progress.clone();
        actix_web::rt::spawn(async move {
            loop {
                let due = progress.get() + timeout;
                sleep_until(due).await;
                if progress.get() + timeout <= Instant::now() {
                    tracing::info!(
                        timeout_ms = timeout.as_millis() as u64,
                        "client stopped reading the response; dropping the connection"
                    );
                    let _ = socket.0.shutdown(Shutdown::Both);
                    return;
                }
            }
        })
    };
    BoxBody::new(Pieces {
        bytes,
        progress,
        watchdog,
    })
}

struct Pieces {
    bytes: Bytes,
    progress: Rc<Cell<Instant>>,
    watchdog: actix_web::rt::task::JoinHandle<()>,
}

impl MessageBody for Pieces {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.bytes.len() as u64)
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.progress.set(Instant::now());
        if self.bytes.is_empty() {
            self.watchdog.abort();
            return Poll::Ready(None);
        }
        let n = self.bytes.len().min(PIECE);
        Poll::Ready(Some(Ok(self.bytes.split_to(n))))
    }
}

impl Drop for Pieces {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}
