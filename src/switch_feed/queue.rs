//! Group commit for the feed's writes, per worker (see `routes::configure`).
//!
//! Single reports that arrive while earlier ones are being written wait for the next write and
//! go to the database together, as one set-based batch, instead of as one transaction each. A
//! report alone is written at once, the way `PUT` always was; under load each write takes every
//! report that queued up meanwhile (up to [`MOST`]), so that the cost of a transaction (its
//! statements, their planning, the commit) is shared by many reports. Every report still gets
//! the answer of applying it on its own: the batch path answers each report as applying the
//! reports one after the other in arrival order would, and concurrent requests have no order
//! between them anyway.
//!
//! Batch requests are written one at a time per worker: concurrent batches mostly compete for
//! the same index pages and processor time, and write fewer reports per second than one.
//!
//! Nothing waits for its write longer than the pool's acquire timeout: past it, the request
//! answers 503 as it would had it waited that long for a connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::Pool;
use tokio::sync::{oneshot, Semaphore};

use super::repo::{self, ApplyError, Item, Outcome};
use super::report::Report;
use crate::db::is_unavailable;
use crate::db::Database;

/// Writes of single reports in flight at once per worker.
const WRITERS: usize = 3;
/// Batch requests written at once per worker.
const BATCHES: usize = 1;
/// Most single reports written together.
const MOST: usize = 250;

type Answer = Result<Outcome, QueueError>;

/// Why a report or batch given to the queue was not applied.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The report contradicts the stored accounts or call; nothing was stored.
    #[error("{0}")]
    Invalid(String),
    /// The write could not start in time, or the database could not be reached (the detail is
    /// for the log); nothing was stored, and sending again is safe.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The database failed the write for another reason (the detail is for the log).
    #[error("failed: {0}")]
    Failed(String),
}

impl QueueError {
    /// The answer of each report of a write that failed with `e`.
    fn of_database(e: &sqlx::Error) -> Self {
        if is_unavailable(e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::Failed(e.to_string())
        }
    }
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        Self::of_database(&e)
    }
}

impl From<ApplyError> for QueueError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Invalid(message) => Self::Invalid(message),
            ApplyError::Database(e) => Self::of_database(&e),
        }
    }
}

struct Waiting {
    switch_organization: Option<i64>,
    report: Report,
    /// When the report stops waiting and answers 503.
    deadline: Instant,
    answer: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct State {
    waiting: Vec<Waiting>,
    writers: usize,
}

/// The writes of one worker.
pub struct Queue {
    state: Mutex<State>,
    batches: Semaphore,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            batches: Semaphore::new(BATCHES),
        }
    }
}

impl Queue {
    /// Applies a single report, together with the others waiting at the same time. `wait`
    /// bounds how long it waits for its write to start.
    pub async fn apply(
        self: &Arc<Self>,
        db: &Database,
        wait: Duration,
        switch_organization: Option<i64>,
        report: Report,
    ) -> Answer {
        let (answer, answered) = oneshot::channel();
        let start_writer = {
            let mut state = self.state.lock().expect("queue lock");
            state.waiting.push(Waiting {
                switch_organization,
                report,
                deadline: Instant::now() + wait,
                answer,
            });
            let start = state.writers < WRITERS;
            if start {
                state.writers += 1;
            }
            start
        };
        if start_writer {
            // On the main runtime, like all database work: this worker's may stop first.
            let (queue, pool) = (self.clone(), db.pool.clone());
            db.spawn(async move { queue.write(&pool).await });
        }
        answered.await.unwrap_or_else(|_| {
            Err(QueueError::Failed(
                "the report was dropped unwritten".into(),
            ))
        })
    }

    /// Applies the reports of a batch request (see [`repo::apply_batch`]) once the batches
    /// before it are written. `wait` bounds how long that may take.
    pub async fn apply_batch(
        &self,
        db: &Database,
        wait: Duration,
        switch_organization: Option<i64>,
        reports: Vec<Report>,
    ) -> Result<Vec<Result<Outcome, String>>, QueueError> {
        let _turn = tokio::time::timeout(wait, self.batches.acquire())
            .await
            .map_err(|_| {
                crate::metrics::refused(crate::metrics::Refusal::FeedQueue);
                QueueError::Unavailable("waited too long for the batch's turn".into())
            })?
            .expect("the semaphore is never closed");
        db.run(|pool| async move {
            Ok(repo::apply_batch(&pool, switch_organization, &reports).await?)
        })
        .await
    }

    /// Writes what is waiting until nothing is.
    async fn write(&self, pool: &Pool) {
        // Counts this writer out however it ends, so that the queue never stalls.
        let _writer = Writer(self);
        loop {
            let group: Vec<Waiting> = {
                let mut state = self.state.lock().expect("queue lock");
                if state.waiting.is_empty() {
                    return;
                }
                let n = state.waiting.len().min(MOST);
                state.waiting.drain(..n).collect()
            };
            let now = Instant::now();
            let (group, late): (Vec<_>, Vec<_>) = group.into_iter().partition(|w| w.deadline > now);
            for waiting in late {
                crate::metrics::refused(crate::metrics::Refusal::FeedQueue);
                let _ = waiting
                    .answer
                    .send(Err(QueueError::of_database(&sqlx::Error::PoolTimedOut)));
            }
            write_group(pool, group).await;
        }
    }
}

struct Writer<'a>(&'a Queue);

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.state.lock() {
            state.writers -= 1;
        }
    }
}

async fn write_group(pool: &Pool, mut group: Vec<Waiting>) {
    tracing::trace!(reports = group.len(), "writing queued switch reports");
    crate::metrics::group_commit(group.len());
    if group.len() <= 1 {
        if let Some(one) = group.pop() {
            let answer = repo::apply(pool, one.switch_organization, &one.report).await;
            let _ = one.answer.send(answer.map_err(QueueError::from));
        }
        return;
    }
    let items: Vec<Item<'_>> = group
        .iter()
        .map(|w| Item {
            switch_organization: w.switch_organization,
            report: &w.report,
        })
        .collect();
    match repo::apply_items(pool, &items).await {
        Ok(answers) => {
            for (waiting, answer) in group.into_iter().zip(answers) {
                let answer = answer.map_err(|message| ApplyError::Invalid(message).into());
                let _ = waiting.answer.send(answer);
            }
        }
        Err(e) => {
            for waiting in group {
                let _ = waiting.answer.send(Err(QueueError::of_database(&e)));
            }
        }
    }
}
