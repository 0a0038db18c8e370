//! Live streams of the list (issue 13): `GET /uapi/phoneCalls/…` with `Accept:
//! text/event-stream` answers with server-sent events instead of one page. The list's handler
//! (`phone_calls::routes`) authenticates, parses and resolves as for a page, then hands over
//! to [`open`].
//!
//! How a change reaches a client, across every instance behind the balancer:
//! 1. the database notifies the ids of changed live calls on [`CHANNEL`] at commit (migration
//!    0015's triggers: every writer, batched per statement, 200 ids per notification);
//! 2. each instance's listener (`notifications`) hands them to its [`Hub`], whose reader
//!    (`changes::read`) reads them in one statement per notification at most, whatever the
//!    number of streams, and broadcasts the batch;
//! 3. each stream (`session`) decides in Rust, with `phone_calls::matcher` (held equal to the
//!    page statement by `tests/api/matcher.rs`), whether each call is on its list now, and
//!    what that changes for its client: `upsert` or `remove`.
//!
//! This module is the one home of the streams' rules: the limits ([`Limits`], from the
//! settings), the events and cursors (`session`), what makes a stream start over or end.

pub mod changes;
mod session;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse};
use tokio::sync::{broadcast, Notify};

use crate::auth::extractor::{credential, Credential};
use crate::auth::{token, Caller};
use crate::config::Settings;
use crate::http::client_limits::ClientSocket;
use crate::http::{ApiError, AppState};
use crate::metrics;
use crate::phone_calls::admission::Rows;
use crate::phone_calls::path::ListPath;
use crate::phone_calls::query::ListRequest;
use crate::phone_calls::sql::Scope;
use crate::phone_calls::PathCache;

/// The channel the database notifies changed live calls on (migration 0015).
pub const CHANNEL: &str = "phone_calls_changed";

/// What bounds the streams of one instance (settings `MAX_STREAMS`, `MAX_STREAMS_PER_TOKEN`,
/// `STREAM_HEARTBEAT_MS`, `STREAM_QUEUE`, `STREAM_RESUME_SECONDS`, `STREAM_REPLAY_EVENTS`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_streams: usize,
    pub per_token: usize,
    pub heartbeat: Duration,
    /// Changes a stream may be behind before it is reset and disconnected.
    pub queue: usize,
    /// How long a disconnected stream is kept for its client to resume it.
    pub resume: Duration,
    /// Events a stream keeps to send again to a client that resumes.
    pub replay: usize,
    /// How long an event may wait for a client that does not read.
    pub write_timeout: Duration,
}

impl Limits {
    pub fn of(settings: &Settings) -> Self {
        Self {
            max_streams: settings.max_streams,
            per_token: settings.max_streams_per_token,
            heartbeat: settings.stream_heartbeat,
            queue: settings.stream_queue,
            resume: settings.stream_resume,
            replay: settings.stream_replay,
            write_timeout: settings.write_timeout,
        }
    }
}

/// What the hub broadcasts to every stream, in the order it happened.
#[derive(Clone)]
pub enum Change {
    /// Calls changed (one read of the reader).
    Calls(Arc<changes::Batch>),
    /// Every stream starts over (`reset`, then a new snapshot): accounts or extensions changed
    /// what lists resolve to or who may see what, or changes may have been missed.
    Reset(&'static str),
    /// This token was issued, revoked, expired early or deleted: its streams check it again.
    Token([u8; 32]),
    /// The instance is stopping: every stream ends.
    Shutdown,
}

/// The streams of one instance: the broadcast of changes, the changed ids waiting to be read,
/// the counts that the limits bound, and the disconnected streams kept for a while.
pub struct Hub {
    limits: Limits,
    changes: broadcast::Sender<Change>,
    pending: Mutex<std::collections::HashSet<uuid::Uuid>>,
    wake: Notify,
    registry: Mutex<Registry>,
    closing: AtomicBool,
    /// Statements the change reader ran.
    reads: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Registry {
    open: usize,
    per_token: HashMap<[u8; 32], usize>,
    /// Connected streams, by cursor key: a client that resumes while its old connection still
    /// looks open takes its stream over.
    attached: HashMap<u64, ([u8; 32], Arc<Notify>)>,
    /// Disconnected streams kept for their client to resume, by cursor key.
    parked: HashMap<u64, (session::Session, Instant)>,
}

impl Hub {
    pub fn new(limits: Limits) -> Arc<Self> {
        let (changes, _) = broadcast::channel(limits.queue.max(1));
        Arc::new(Self {
            limits,
            changes,
            pending: Mutex::default(),
            wake: Notify::new(),
            registry: Mutex::default(),
            closing: AtomicBool::new(false),
            reads: Default::default(),
        })
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, change: Change) {
        // No receiver: no stream is open, nobody to tell.
        let _ = self.changes.send(change);
    }

    /// Whether streams may be opened at all (`MAX_STREAMS` above 0).
    pub fn is_enabled(&self) -> bool {
        self.limits.max_streams > 0
    }

    /// Streams connected now.
    pub fn streams_open(&self) -> usize {
        self.registry().open
    }

    /// Statements the change reader ran since the start.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Whether any stream, connected or kept for its client to resume, needs the changes.
    pub fn is_followed(&self) -> bool {
        let mut registry = self.registry();
        if registry.open > 0 {
            return true;
        }
        // Kept streams whose time is up are let go here too, or the reader would go on.
        let now = Instant::now();
        registry.parked.retain(|_, (_, until)| *until > now);
        !registry.parked.is_empty()
    }

    /// A notification of `notifications::CHANNEL` (tokens and paths), as streams see it.
    pub fn accounts_changed(&self, payload: &str) {
        if !self.is_followed() {
            return;
        }
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(payload, &mut digest).is_ok() {
            self.send(Change::Token(digest));
        } else {
            self.send(Change::Reset("accounts_changed"));
        }
    }

    /// The notification listener (re)connected: notifications may have been missed.
    pub fn resync(&self) {
        if self.is_followed() {
            self.send(Change::Reset("notifications_reconnected"));
        }
    }

    /// Ends every stream and refuses new ones (SIGTERM).
    pub fn shut_down(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.send(Change::Shutdown);
        self.registry().parked.clear();
    }

    /// Counts a new stream against the limits, or refuses it.
    fn permit(self: &Arc<Self>, digest: [u8; 32]) -> Result<Permit, ApiError> {
        if self.closing.load(Ordering::SeqCst) {
            metrics::refused(metrics::Refusal::Streams);
            return Err(ApiError::Unavailable(
                "the instance is shutting down".into(),
            ));
        }
        let mut registry = self.registry();
        let mine = registry.per_token.get(&digest).copied().unwrap_or(0);
        if registry.open >= self.limits.max_streams {
            drop(registry);
            metrics::refused(metrics::Refusal::Streams);
            return Err(ApiError::Unavailable(format!(
                "MAX_STREAMS ({}) streams are open on this instance",
                self.limits.max_streams
            )));
        }
        if mine >= self.limits.per_token {
            drop(registry);
            metrics::refused(metrics::Refusal::Streams);
            return Err(ApiError::Unavailable(format!(
                "MAX_STREAMS_PER_TOKEN ({}) streams are open with this token",
                self.limits.per_token
            )));
        }
        registry.open += 1;
        *registry.per_token.entry(digest).or_default() += 1;
        Ok(Permit {
            hub: self.clone(),
            digest,
            _metric: metrics::OpenStream::new(),
        })
    }

    /// Keeps a disconnected stream for its client to resume; the oldest go first when as many
    /// are kept as streams may be open.
    fn park(&self, session: session::Session) {
        let mut registry = self.registry();
        let now = Instant::now();
        registry.parked.retain(|_, (_, until)| *until > now);
        if registry.parked.len() >= self.limits.max_streams {
            let oldest = registry
                .parked
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(key, _)| *key);
            if let Some(key) = oldest {
                registry.parked.remove(&key);
            }
        }
        registry
            .parked
            .insert(session.key(), (session, now + self.limits.resume));
    }

    /// The kept stream of this cursor key, if it is still kept and is this token's stream of
    /// this request; a connected one is asked to let go first (its client came back on a new
    /// connection before the old one was seen closed). Another token's cursor touches nothing.
    async fn unpark(
        &self,
        key: u64,
        digest: &[u8; 32],
        request: &session::RequestKey,
    ) -> Option<session::Session> {
        let attached = self.registry().attached.get(&key).cloned();
        if let Some((owner, takeover)) = attached {
            if !token::digests_equal(&owner, digest) {
                return None;
            }
            takeover.notify_one();
            for _ in 0..50 {
                if !self.registry().attached.contains_key(&key) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut registry = self.registry();
        let now = Instant::now();
        registry.parked.retain(|_, (_, until)| *until > now);
        match registry.parked.get(&key) {
            Some((kept, _)) if kept.belongs_to(digest, request) => {
                registry.parked.remove(&key).map(|(session, _)| session)
            }
            _ => None,
        }
    }
}

/// One open stream, counted until dropped.
struct Permit {
    hub: Arc<Hub>,
    digest: [u8; 32],
    _metric: Option<metrics::OpenStream>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut registry = self.hub.registry();
        registry.open -= 1;
        if let Some(n) = registry.per_token.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                registry.per_token.remove(&self.digest);
            }
        }
    }
}

/// A stream's response body: the events its task sends; it tells the task when it is dropped.
struct Body {
    events: tokio::sync::mpsc::Receiver<actix_web::web::Bytes>,
    done: Arc<Notify>,
}

impl Drop for Body {
    fn drop(&mut self) {
        self.done.notify_one();
    }
}

/// Whether the client asks for a stream rather than a page.
pub fn wants_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(actix_web::http::header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            item.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// What the list handler resolved, handed over to the stream.
pub struct Opening {
    pub caller: Caller,
    pub path: ListPath,
    pub scope: Scope,
    pub call: Option<uuid::Uuid>,
    pub request: ListRequest,
}

/// Starts a stream: counts it against the limits, resumes the stream of `Last-Event-ID` when it
/// is still kept here, or takes a snapshot (errors before the first byte are the list's JSON
/// errors); then answers `200 text/event-stream` and keeps sending from a task of its own.
pub async fn open(
    req: &HttpRequest,
    state: &AppState,
    hub: &Arc<Hub>,
    paths: &Arc<PathCache>,
    rows: &Arc<Rows>,
    opening: Opening,
) -> Result<HttpResponse, ApiError> {
    let digest = match credential(req) {
        Credential::Bearer(token) => token::digest(&token),
        Credential::Missing => return Err(ApiError::Unauthorized { token_sent: false }),
    };
    let permit = hub.permit(digest)?;
    let request_key = session::RequestKey::of(req.path(), req.query_string());
    let cursor = session::cursor(req);
    let resumed = match cursor {
        Some((key, seen)) => match hub.unpark(key, &digest, &request_key).await {
            Some(mut kept) => kept.resume_after(seen).then_some(kept),
            _ => None,
        },
        None => None,
    };
    let context = session::Context {
        state: state.clone(),
        hub: hub.clone(),
        paths: paths.clone(),
        rows: rows.clone(),
    };
    let mut session = match resumed {
        Some(kept) => kept,
        None => {
            let mut fresh = session::Session::new(
                hub.changes.subscribe(),
                digest,
                request_key,
                opening,
                &hub.limits,
            );
            fresh.check_token(&context).await?;
            if cursor.is_some() {
                // The client held a state this instance cannot bring up to date.
                fresh.reset("cursor_unknown");
            }
            fresh.snapshot(&context).await?;
            fresh
        }
    };
    let mut first = vec![actix_web::web::Bytes::from_static(session::RETRY)];
    first.extend(session.take_unsent());
    let socket = req.conn_data::<Rc<ClientSocket>>().cloned();
    let (out, body) = tokio::sync::mpsc::channel::<actix_web::web::Bytes>(16);
    let takeover = Arc::new(Notify::new());
    hub.registry()
        .attached
        .insert(session.key(), (digest, takeover.clone()));
    // Told when the response is over (its body dropped): all sent, or the connection closed.
    let done = Arc::new(Notify::new());
    actix_web::rt::spawn(session::run(
        session,
        session::Connection {
            permit,
            out,
            first,
            socket,
            takeover,
            done: done.clone(),
        },
        context,
    ));
    let mut body = Body { events: body, done };
    let stream = futures_util::stream::poll_fn(move |cx| {
        body.events
            .poll_recv(cx)
            .map(|bytes| bytes.map(Ok::<_, std::convert::Infallible>))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
