//! The changed calls, read once per instance: the database notifies their ids on
//! [`super::CHANNEL`] (migration 0015's triggers), [`Hub::changed`] gathers them, and [`read`]
//! runs one statement for every id gathered since its last read, whatever the number of
//! streams. Each stream then decides alone, in Rust, what the batch means to it
//! (`session::Session::apply`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::{Change, Hub};
use crate::db::Pool;
use crate::metrics;
use crate::phone_calls::matcher::{StoredCall, StoredView};
use crate::phone_calls::model;
use crate::phone_calls::query::Fields;
use crate::phone_calls::repo::{call_of, view_of, CallRow, Views};

/// The most ids one statement reads; more wait for the next.
const MOST_PER_READ: usize = 5000;

/// The calls of one read, with the moment the read was over: a stream whose snapshot began
/// later has seen these states already, or newer ones.
pub struct Batch {
    pub calls: Vec<Changed>,
    pub read_done: Instant,
}

/// One changed call: its state now, or `None` when it is gone from the table.
pub struct Changed {
    pub id: Uuid,
    pub state: Option<ChangedCall>,
}

/// A changed call as stored: what the matcher decides on, what its JSON is made of, and its
/// JSON for each `fields` some stream asked for, made once and shared by every stream.
pub struct ChangedCall {
    pub stored: StoredCall,
    pub row: CallRow,
    pub updated: DateTime<Utc>,
    renders: Mutex<Vec<(Fields, Arc<str>, u64)>>,
}

impl ChangedCall {
    /// The call's JSON with `fields`, and its digest (what a stream compares with what its
    /// client holds).
    pub fn render(&self, fields: Fields) -> (Arc<str>, u64) {
        let mut renders = self.renders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, json, digest)) = renders.iter().find(|(f, _, _)| *f == fields) {
            return (json.clone(), *digest);
        }
        let json: Arc<str> = model::call_json(&self.row, fields)
            .unwrap_or_default()
            .into();
        let digest = super::session::digest(json.as_bytes());
        renders.push((fields, json.clone(), digest));
        (json, digest)
    }
}

/// The statement: the changed calls with their owner and views, in the columns of the page
/// statement (`repo::call_of`, `repo::view_of`), then what the matcher needs besides.
pub const READ: &str =
    "SELECT c.id, c.extension, c.organization_id AS owner_id, o.name AS owner_name, \
e.user_id AS owner_user_id, c.published, c.answered, c.nonce, 0::bigint AS total, \
v.view_id, v.extension AS view_extension, v.source, v.destination, v.flow, v.status, v.ringing, \
v.caller_id, v.recording, v.answered AS view_answered, v.parked, v.parked_pos, v.parked_by, \
v.on_hold, v.holder, v.disposition, \
c.extension_id, c.live, c.updated, v.extension_id AS view_extension_id, v.call_live \
FROM phone_calls c JOIN organizations o ON o.id = c.organization_id \
JOIN extensions e ON e.id = c.extension_id \
LEFT JOIN phone_call_views v ON v.phone_call_id = c.id \
WHERE c.id = ANY($1) ORDER BY c.id, v.view_id";

/// Where the matcher's own columns start.
const MATCHER_AT: usize = 25;

impl Hub {
    /// A notification's payload: the ids of changed calls, comma-separated. Kept until the
    /// reader's next statement; nothing is kept while no stream listens.
    pub fn changed(&self, payload: &str) {
        if !self.is_followed() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend(payload.split(',').filter_map(|id| Uuid::try_parse(id).ok()));
        drop(pending);
        self.wake.notify_one();
    }

    fn take_pending(&self) -> Vec<Uuid> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() <= MOST_PER_READ {
            return std::mem::take(&mut *pending).into_iter().collect();
        }
        let some: Vec<Uuid> = pending.iter().take(MOST_PER_READ).copied().collect();
        for id in &some {
            pending.remove(id);
        }
        some
    }

    fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

/// Reads the changed calls for as long as the process runs, one statement at a time, on the
/// primary (a stream's snapshot reads the primary too: a replica could be older than a change
/// already told). A failed read makes every stream start over, since a change may be lost.
pub async fn read(hub: Arc<Hub>, pool: Pool) {
    loop {
        if !hub.has_pending() {
            hub.wake.notified().await;
        }
        let ids = hub.take_pending();
        if ids.is_empty() || !hub.is_followed() {
            continue;
        }
        hub.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match read_calls(&pool, &ids).await {
            Ok(calls) => {
                metrics::stream_batch(calls.len());
                let batch = Batch {
                    calls,
                    read_done: Instant::now(),
                };
                hub.send(Change::Calls(Arc::new(batch)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "streams: changed calls could not be read; every stream starts over");
                hub.send(Change::Reset("changes_lost"));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

async fn read_calls(pool: &Pool, ids: &[Uuid]) -> Result<Vec<Changed>, sqlx::Error> {
    let mut session = pool.session().await?;
    let started = Instant::now();
    let rows = sqlx::query(READ)
        .persistent(pool.prepared())
        .bind(ids)
        .fetch(&mut *session);
    let calls = gather(rows).await;
    metrics::statement_finished("stream_changes", calls.is_ok(), started.elapsed());
    let mut calls = calls?;
    session.end().await?;
    let found: HashSet<Uuid> = calls.iter().map(|c| c.id).collect();
    calls.extend(
        ids.iter()
            .filter(|id| !found.contains(id))
            .map(|&id| Changed { id, state: None }),
    );
    Ok(calls)
}

/// The rows, sorted by call then view, as calls.
async fn gather(
    mut rows: impl futures_util::Stream<Item = Result<PgRow, sqlx::Error>> + Unpin,
) -> Result<Vec<Changed>, sqlx::Error> {
    let mut calls: Vec<Changed> = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let id: Uuid = row.try_get(0)?;
        let view = view_of(&row)?;
        let stored_view = match &view {
            Some(v) => Some(StoredView {
                extension_id: row.try_get(MATCHER_AT + 3)?,
                caller_id: v.caller_id.clone(),
                status: v.status,
                flow: v.flow,
                source: v.source.clone(),
                destination: v.destination.clone(),
                live: row.try_get(MATCHER_AT + 4)?,
            }),
            None => None,
        };
        let same = calls.last().is_some_and(|c| c.id == id);
        if !same {
            let (mut row_call, _) = call_of(&row)?;
            row_call.views = None;
            let stored = StoredCall {
                id,
                organization_id: row_call.owner_id,
                extension_id: row.try_get(MATCHER_AT)?,
                extension: row_call.extension.clone(),
                published: row_call.published,
                answered: row_call.answered,
                live: row.try_get(MATCHER_AT + 1)?,
                views: Vec::new(),
            };
            calls.push(Changed {
                id,
                state: Some(ChangedCall {
                    stored,
                    row: row_call,
                    updated: row.try_get(MATCHER_AT + 2)?,
                    renders: Mutex::new(Vec::new()),
                }),
            });
        }
        let Some(state) = calls.last_mut().and_then(|c| c.state.as_mut()) else {
            continue;
        };
        if let (Some(view), Some(stored_view)) = (view, stored_view) {
            state.stored.views.push(stored_view);
            match &mut state.row.views {
                Some(Views::Rows(views)) => views.push(view),
                _ => state.row.views = Some(Views::Rows(vec![view])),
            }
        }
    }
    Ok(calls)
}
