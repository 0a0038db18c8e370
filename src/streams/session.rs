//! One stream: what its client holds, the events it sends, and its life.
//!
//! Events (`text/event-stream`), each with an `id:` cursor `<key>-<n>` (`key` names the stream
//! on this instance, `n` counts its events):
//! - `snapshot`: the list's page JSON, exactly as the same `GET` without the stream would
//!   answer (an empty list: `"entry":[]`, `totalResults` 0);
//! - `upsert`: one call as the page's `entry` shows it, when a call comes onto the list or
//!   changes while on it; never the state the client already holds;
//! - `remove`: `{"id":…}`, when a call the client holds ends, stops matching or stops being
//!   visible;
//! - `reset`: `{"reason":…}`: forget everything; a `snapshot` follows on the same connection,
//!   unless the stream then ends (`too_slow`, `token`, `path`);
//! - a comment, `: heartbeat`, every `STREAM_HEARTBEAT_MS`.
//!
//! What the client holds is tracked here as each held call's digest (`held`), so that an
//! `upsert` is sent only for a new state and a `remove` only for a call held. The last
//! `STREAM_REPLAY_EVENTS` events are kept; a client that reconnects with `Last-Event-ID` within
//! `STREAM_RESUME_SECONDS` gets exactly the events after it (see `super::open`).

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, Notify};
use uuid::Uuid;

use super::changes::{Batch, ChangedCall};
use super::{Change, Hub, Opening, Permit};
use crate::auth::{token, Role};
use crate::http::client_limits::ClientSocket;
use crate::http::{ApiError, AppState};
use crate::metrics;
use crate::phone_calls::admission::Rows;
use crate::phone_calls::matcher::{self, Audience};
use crate::phone_calls::model::{self, PageWriter};
use crate::phone_calls::path::ListPath;
use crate::phone_calls::query::{Field, ListRequest};
use crate::phone_calls::sql::ceil_micros;
use crate::phone_calls::{repo, PathCache};

/// How soon a client should reconnect after the stream ends: the `retry:` field, sent first.
pub const RETRY: &[u8] = b"retry: 1000\n\n";

/// What a stream needs from the service.
#[derive(Clone)]
pub struct Context {
    pub state: AppState,
    pub hub: Arc<Hub>,
    pub paths: Arc<PathCache>,
    pub rows: Arc<Rows>,
}

/// A call's JSON as a digest: what the client holds of it.
pub fn digest(json: &[u8]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(json);
    hasher.finish()
}

/// The request a stream answers, without its token: a resumed stream must be the same, and
/// its snapshots' `next` and `prev` links repeat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    path: String,
    query: String,
}

impl RequestKey {
    pub fn of(path: &str, query: &str) -> Self {
        let pairs = model::query_without_token(query);
        Self {
            path: path.to_string(),
            query: serde_urlencoded::to_string(&pairs).unwrap_or_default(),
        }
    }
}

/// The cursor of `Last-Event-ID`: the stream's key and the last event its client received.
pub fn cursor(req: &HttpRequest) -> Option<(u64, u64)> {
    let value = req.headers().get("Last-Event-ID")?.to_str().ok()?;
    let (key, n) = value.trim().split_once('-')?;
    Some((u64::from_str_radix(key, 16).ok()?, n.parse().ok()?))
}

/// One event kept for replay: its number, kind and data (shared with the other streams that
/// sent the same call's JSON).
struct Event {
    n: u64,
    kind: &'static str,
    data: Arc<str>,
    at: Instant,
}

pub struct Session {
    key: u64,
    digest: [u8; 32],
    request_key: RequestKey,
    changes: broadcast::Receiver<Change>,
    audience: Audience,
    expires: DateTime<Utc>,
    path: ListPath,
    call: Option<Uuid>,
    request: ListRequest,
    /// The next event's number.
    next: u64,
    /// The last events sent, for a client that resumes.
    sent: VecDeque<Event>,
    /// Events made and not yet handed to a connection (their numbers are at the end of `sent`).
    unsent: usize,
    /// The calls the client holds, by the digest of the JSON it holds.
    held: HashMap<Uuid, u64>,
    /// When the last snapshot began: a batch read before then is older than the snapshot.
    snapshot_started: Instant,
    replay: usize,
    keep: Duration,
    /// Resumed by its client and not yet past the changes that came while it was away.
    resumed: bool,
    /// Batches were overwritten in the queue before this stream took them; whether it needed
    /// them shows at the oldest one kept, the next it receives.
    lagged: bool,
}

/// Why a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The connection closed; the stream is kept for a while for its client to resume.
    ClientGone,
    /// Its client resumed it on a new connection.
    TakenOver,
    /// The client did not read fast enough.
    TooSlow,
    /// The token was revoked or expired.
    Token,
    /// The path no longer resolves for the caller.
    Path,
    /// Starting over failed (the database).
    Failed,
    Shutdown,
}

impl End {
    fn reason(self) -> &'static str {
        match self {
            End::ClientGone | End::TakenOver => "client_gone",
            End::TooSlow => "too_slow",
            End::Token => "token",
            End::Path => "path",
            End::Failed => "failed",
            End::Shutdown => "shutdown",
        }
    }
}

impl Session {
    pub fn new(
        changes: broadcast::Receiver<Change>,
        digest: [u8; 32],
        request_key: RequestKey,
        opening: Opening,
        limits: &super::Limits,
    ) -> Self {
        let Opening {
            caller,
            path,
            scope,
            call,
            request,
        } = opening;
        Self {
            key: rand::random(),
            digest,
            request_key,
            changes,
            audience: Audience {
                caller,
                own_extensions: Vec::new(),
                scope,
            },
            expires: Utc::now(),
            path,
            call,
            request,
            next: 0,
            sent: VecDeque::new(),
            unsent: 0,
            held: HashMap::new(),
            snapshot_started: Instant::now(),
            replay: limits.replay.max(1),
            keep: (limits.heartbeat * 2).max(Duration::from_secs(10)),
            resumed: false,
            lagged: false,
        }
    }

    pub fn key(&self) -> u64 {
        self.key
    }

    pub fn belongs_to(&self, digest: &[u8; 32], request_key: &RequestKey) -> bool {
        token::digests_equal(&self.digest, digest) && self.request_key == *request_key
    }

    /// Makes the events after `seen` the ones to send, if they are all still kept.
    pub fn resume_after(&mut self, seen: u64) -> bool {
        if seen >= self.next {
            return false;
        }
        let first = self.sent.front().map_or(self.next, |e| e.n);
        if seen + 1 < first {
            return false;
        }
        self.unsent = (self.next - seen - 1) as usize;
        self.resumed = true;
        true
    }

    /// The bytes of the events not yet handed to a connection.
    pub fn take_unsent(&mut self) -> Vec<Bytes> {
        let from = self.sent.len() - self.unsent.min(self.sent.len());
        let out = self.sent.range(from..).map(|e| self.format(e)).collect();
        self.unsent = 0;
        out
    }

    fn format(&self, event: &Event) -> Bytes {
        Bytes::from(format!(
            "id: {:016x}-{}\nevent: {}\ndata: {}\n\n",
            self.key, event.n, event.kind, event.data
        ))
    }

    /// Makes an event, keeps it for replay, and counts it as not yet sent.
    fn push(&mut self, kind: &'static str, data: Arc<str>) {
        let now = Instant::now();
        self.sent.push_back(Event {
            n: self.next,
            kind,
            data,
            at: now,
        });
        self.next += 1;
        self.unsent += 1;
        // Kept: the last `replay` events, and only those sent within `keep` (a client that lost
        // older ones would have noticed long ago, and resumes through a `reset`): what the
        // streams of an instance keep grows with the rate of changes, never with time. Events
        // not yet sent stay whatever their number (one batch's at most).
        while self.sent.len() > self.unsent
            && self
                .sent
                .front()
                .is_some_and(|e| self.sent.len() > self.replay || e.at + self.keep < now)
        {
            self.sent.pop_front();
        }
        metrics::stream_events(kind, 1);
    }

    /// Reads the token again: its account (role and organization may have changed) and expiry.
    pub async fn check_token(&mut self, cx: &Context) -> Result<(), ApiError> {
        let digest = self.digest;
        let found = cx
            .state
            .db
            .run(|pool| async move { token::lookup(&pool, &digest).await })
            .await?;
        let Some((caller, expires)) = found else {
            return Err(ApiError::Unauthorized { token_sent: true });
        };
        self.audience.caller = caller;
        self.expires = expires;
        Ok(())
    }

    /// Resolves the path again, for the caller as it is now.
    async fn resolve_again(&mut self, cx: &Context) -> Result<(), ApiError> {
        let scope = cx
            .paths
            .resolve(&cx.state.db, &self.audience.caller, &self.path)
            .await?;
        self.audience.scope = scope;
        Ok(())
    }

    /// Takes the snapshot: the page as the list answers it, on the primary, and what the client
    /// will hold. Changes read before it began are older than it and will be skipped.
    pub async fn snapshot(&mut self, cx: &Context) -> Result<(), ApiError> {
        let caller = self.audience.caller.clone();
        if caller.role == Role::User {
            let user = caller.user_id;
            self.audience.own_extensions = cx
                .state
                .db
                .run(|pool| async move {
                    let mut session = pool.session().await?;
                    let ids: Vec<i64> = metrics::statement(
                        "stream_own_extensions",
                        sqlx::query_scalar("SELECT id FROM extensions WHERE user_id = $1")
                            .persistent(pool.prepared())
                            .bind(user)
                            .fetch_all(&mut *session),
                    )
                    .await?;
                    session.end().await?;
                    Ok::<_, sqlx::Error>(ids)
                })
                .await?;
        }
        let largest = if self.call.is_some() {
            1
        } else {
            self.request.count as usize
        };
        let _rows = cx.rows.admit(largest).await;
        let _turn = cx.rows.statement_turn(largest).await;
        let (scope, call, request) = (self.audience.scope.clone(), self.call, self.request.clone());
        let with_views = request.fields.contains(Field::PhoneCallView);
        let RequestKey { path, query } = self.request_key.clone();
        // Just before the page's statement, which sees every change read before now.
        self.snapshot_started = Instant::now();
        let (body, held) = cx
            .state
            .db
            .run(|pool| async move {
                let mut page = PageWriter::new(&request, path, query);
                let mut held = HashMap::new();
                repo::list(
                    &pool,
                    &caller,
                    &scope,
                    call,
                    &request,
                    with_views,
                    |call, total| {
                        held.insert(call.id, digest(page.push(call, total)));
                    },
                )
                .await?;
                Ok::<_, sqlx::Error>((page.finish(), held))
            })
            .await?;
        let body = match body.map_err(|e| ApiError::Internal(e.to_string()))? {
            Some(body) => String::from_utf8(body).unwrap_or_default(),
            None => format!(
                "{{\"startIndex\":{},\"itemsPerPage\":{},\"totalResults\":0,\"entry\":[]}}",
                self.request.start_index, self.request.count
            ),
        };
        self.held = held;
        self.push("snapshot", body.into());
        Ok(())
    }

    /// Whether a changed call is on this stream's list now.
    fn wants(&self, call: &ChangedCall) -> bool {
        matcher::on_list(&self.audience, self.request.filter.as_ref(), &call.stored)
            && self.call.is_none_or(|id| id == call.stored.id)
            && self
                .request
                .updated_since
                .is_none_or(|since| call.updated >= ceil_micros(since))
    }

    /// What a batch of changed calls means to the client: the events it needs.
    fn apply(&mut self, batch: &Batch) {
        if batch.read_done < self.snapshot_started {
            return;
        }
        for changed in &batch.calls {
            match changed.state.as_ref().filter(|call| self.wants(call)) {
                Some(call) => {
                    let (json, digest) = call.render(self.request.fields);
                    if self.held.insert(changed.id, digest) != Some(digest) {
                        self.push("upsert", json);
                    }
                }
                None => {
                    if self.held.remove(&changed.id).is_some() {
                        self.push("remove", format!("{{\"id\":\"{}\"}}", changed.id).into());
                    }
                }
            }
        }
    }

    /// `reset`: the client forgets everything it holds.
    pub fn reset(&mut self, reason: &'static str) {
        self.held.clear();
        self.push("reset", format!("{{\"reason\":\"{reason}\"}}").into());
    }

    /// Starts over: `reset`, then, if the token and the path still hold, a new snapshot.
    async fn start_over(&mut self, cx: &Context, reason: &'static str) -> Result<(), End> {
        self.reset(reason);
        // Whatever was lost before is older than the snapshot to come.
        self.lagged = false;
        match self.check_token(cx).await {
            Ok(()) => {}
            Err(ApiError::Unauthorized { .. }) => return Err(End::Token),
            Err(_) => return Err(End::Failed),
        }
        match self.resolve_again(cx).await {
            Ok(()) => {}
            Err(ApiError::Param { .. }) => return Err(End::Path),
            Err(_) => return Err(End::Failed),
        }
        self.snapshot(cx).await.map_err(|_| End::Failed)
    }
}

/// Sends the stream's events until it ends, then parks it (its client may come back) or lets
/// it go.
/// A stream's connection, as its task holds it.
pub struct Connection {
    pub permit: Permit,
    /// The response body's queue of events.
    pub out: mpsc::Sender<Bytes>,
    /// What to send first (the `retry:` hint, then the events not yet sent).
    pub first: Vec<Bytes>,
    pub socket: Option<Rc<ClientSocket>>,
    /// Notified when the stream's client resumed it on another connection.
    pub takeover: Arc<Notify>,
    /// Notified when the response body is dropped.
    pub done: Arc<Notify>,
}

/// Sends the stream's events until it ends, then parks it (its client may come back) or lets
/// it go.
pub async fn run(mut session: Session, connection: Connection, cx: Context) {
    let Connection {
        permit,
        out,
        first,
        socket,
        takeover,
        done,
    } = connection;
    let end = serve(&mut session, &cx, &out, first, &takeover, socket.as_deref()).await;
    drop(permit);
    metrics::stream_ended(end.reason());
    let key = session.key;
    match end {
        End::ClientGone | End::TakenOver => cx.hub.park(session),
        End::TooSlow => {
            // The client is told with a `reset` if it reads again within the write timeout;
            // if it does not, its connection is cut off, and what waits for it freed.
            session.reset("too_slow");
            let until = tokio::time::Instant::now() + cx.hub.limits.write_timeout;
            for bytes in session.take_unsent() {
                if !matches!(
                    tokio::time::timeout_at(until, out.send(bytes)).await,
                    Ok(Ok(()))
                ) {
                    break;
                }
            }
            drop(out);
            if tokio::time::timeout_at(until, done.notified())
                .await
                .is_err()
            {
                if let Some(socket) = socket {
                    let _ = socket.0.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        _ => {}
    }
    cx.hub.registry().attached.remove(&key);
}

async fn serve(
    s: &mut Session,
    cx: &Context,
    out: &mpsc::Sender<Bytes>,
    first: Vec<Bytes>,
    takeover: &Notify,
    socket: Option<&ClientSocket>,
) -> End {
    let limits = &cx.hub.limits;
    let write_timeout = limits.write_timeout;
    for bytes in first {
        if let Err(end) = send(out, bytes, write_timeout).await {
            return end;
        }
    }
    let beat = limits.heartbeat;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    // A stream that waited for its client owes it one heartbeat, not every one it missed.
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A client that closed its connection is noticed within a second, not at the next write:
    // its stream stops counting against the limits, and is kept for it to resume.
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let expires_in = (s.expires - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let end = tokio::select! {
            change = s.changes.recv() => match change {
                Ok(Change::Calls(batch)) => {
                    // After a lag: the batches lost were read before this one. If it is older
                    // than the snapshot, so were they, and the client needed none of them.
                    let lost = std::mem::take(&mut s.lagged)
                        && batch.read_done >= s.snapshot_started;
                    match (lost, s.resumed) {
                        (false, _) => {
                            s.resumed = false;
                            s.apply(&batch);
                            None
                        }
                        // Fallen behind while its client was away: what it missed is lost,
                        // but the client is here now; it starts over.
                        (true, true) => s.start_over(cx, "changes_lost").await.err(),
                        (true, false) => return End::TooSlow,
                    }
                }
                Ok(Change::Reset(reason)) => s.start_over(cx, reason).await.err(),
                Ok(Change::Token(digest)) if token::digests_equal(&digest, &s.digest) => {
                    match s.check_token(cx).await {
                        Ok(()) => None,
                        Err(ApiError::Unauthorized { .. }) => Some(End::Token),
                        Err(_) => s.start_over(cx, "token_unchecked").await.err(),
                    }
                }
                Ok(Change::Token(_)) => None,
                Ok(Change::Shutdown) | Err(broadcast::error::RecvError::Closed) => {
                    Some(End::Shutdown)
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    s.lagged = true;
                    None
                }
            },
            _ = heartbeat.tick() => {
                metrics::stream_events("heartbeat", 1);
                if let Err(end) = send(out, Bytes::from_static(b": heartbeat\n\n"), write_timeout).await {
                    return end;
                }
                None
            }
            () = tokio::time::sleep(expires_in) => Some(End::Token),
            () = takeover.notified() => Some(End::TakenOver),
            _ = probe.tick(), if socket.is_some() => {
                socket.filter(|socket| has_closed(socket)).map(|_| End::ClientGone)
            }
            () = out.closed() => Some(End::ClientGone),
        };
        // Whatever the change made is sent, even the events before an end (a `reset`).
        for bytes in s.take_unsent() {
            if let Err(gone) = send(out, bytes, write_timeout).await {
                return gone;
            }
        }
        if let Some(end) = end {
            return end;
        }
    }
}

/// How often a stream looks whether its client closed the connection.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Whether the client closed its side: the socket (non-blocking, as the server's) reads an
/// end of file, or fails. Peeking consumes nothing; a client sends nothing after its request.
fn has_closed(socket: &ClientSocket) -> bool {
    let mut byte = [0u8; 1];
    match socket.0.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
        ),
    }
}

/// Hands one event to the connection; a client that has not taken the last ones within the
/// write timeout is too slow, and one whose connection closed is gone.
async fn send(out: &mpsc::Sender<Bytes>, bytes: Bytes, timeout: Duration) -> Result<(), End> {
    match tokio::time::timeout(timeout, out.send(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::ClientGone),
        Err(_) => Err(End::TooSlow),
    }
}
