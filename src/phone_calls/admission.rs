//! How many rows of list pages are built at once (`LIST_ROWS_IN_FLIGHT`), which bounds the
//! memory that large pages take together.
//!
//! A page is admitted before its statement runs, for the rows it asks for (`count`, or one for
//! a call by id): a page's JSON is written as its rows arrive (`model::PageWriter`), so what it
//! holds is at most that many calls' JSON, never its rows on top. Pages of at most
//! [`SMALL_PAGE`] rows never wait: they cannot hold much memory, and must never queue behind a
//! large page they have nothing to do with. Large pages wait first come, first served; the wait
//! is bounded by the request's deadline (see `middleware`).
//!
//! Then the statements of requests that may return more than [`SMALL_PAGE`] rows take turns on
//! at most a quarter of the request pool (at least one connection), so that a burst of large
//! requests never takes the connections, nor most of the database's processors, from the
//! small ones.

use tokio::sync::{Semaphore, SemaphorePermit};

/// The most rows a page may have and still be built without waiting.
pub const SMALL_PAGE: usize = 100;

/// Whether a page of `rows` rows is small: built without waiting, and in place.
pub fn is_small(rows: usize) -> bool {
    rows <= SMALL_PAGE
}

/// The rows of large pages being built, and the turns of their statements.
pub struct Rows {
    permits: Semaphore,
    statements: Semaphore,
}

/// A page's admission: holds its rows' permits until dropped.
pub struct Admitted<'a>(#[allow(dead_code)] Option<SemaphorePermit<'a>>);

impl Rows {
    /// Room for `capacity` rows at once (at least 5000, the largest page, so every page fits),
    /// over a request pool of `pool_size` connections.
    pub fn new(capacity: u32, pool_size: u32) -> Self {
        Self {
            permits: Semaphore::new(capacity as usize),
            statements: Semaphore::new((pool_size as usize / 4).max(1)),
        }
    }

    /// Waits for the turn of a statement that may return `count` rows; small ones need none.
    pub async fn statement_turn(&self, count: usize) -> Admitted<'_> {
        if is_small(count) {
            return Admitted(None);
        }
        let permit = self
            .statements
            .acquire()
            .await
            .expect("the semaphore is never closed");
        Admitted(Some(permit))
    }

    /// Waits until a page of `rows` rows may be built.
    pub async fn admit(&self, rows: usize) -> Admitted<'_> {
        if is_small(rows) {
            return Admitted(None);
        }
        let permit = self
            .permits
            .acquire_many(rows as u32)
            .await
            .expect("the semaphore is never closed");
        Admitted(Some(permit))
    }

    /// Permits free now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_small_page_never_waits_behind_large_ones() {
        let rows = Rows::new(5000, 10);
        let large = rows.admit(5000).await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), rows.admit(200)).await;
        assert!(
            waiting.is_err(),
            "a large page waits while the rows are taken"
        );
        let small = tokio::time::timeout(Duration::from_millis(50), rows.admit(SMALL_PAGE)).await;
        assert!(small.is_ok(), "a small page is built at once");
        drop(large);
        assert_eq!(rows.available(), 5000);
    }

    #[tokio::test]
    async fn large_statements_take_turns_on_a_quarter_of_the_pool_and_small_ones_never_wait() {
        let rows = Rows::new(5000, 8);
        let first = rows.statement_turn(5000).await;
        let second = rows.statement_turn(101).await;
        let third =
            tokio::time::timeout(Duration::from_millis(50), rows.statement_turn(5000)).await;
        assert!(
            third.is_err(),
            "two of eight connections are the large statements' share"
        );
        let small = tokio::time::timeout(Duration::from_millis(50), rows.statement_turn(20)).await;
        assert!(small.is_ok());
        drop((first, second));
        let one = Rows::new(5000, 1);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), one.statement_turn(5000))
                .await
                .is_ok(),
            "a pool of one still serves large pages"
        );
    }

    #[tokio::test]
    async fn a_page_takes_permits_for_the_rows_it_has() {
        let rows = Rows::new(5000, 10);
        let page = rows.admit(180).await;
        assert_eq!(rows.available(), 5000 - 180);
        drop(page);
        assert_eq!(rows.available(), 5000);
    }
}
