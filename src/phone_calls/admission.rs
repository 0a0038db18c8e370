//! How many rows of list pages are built at once (`LIST_ROWS_IN_FLIGHT`), which bounds the
//! memory that large pages take together.
//!
//! A page is admitted after its statement has run, for the rows that actually came back: a
//! request of `count=5000` over 80 matching calls costs 80 permits, not 5000. Pages of at most
//! [`SMALL_PAGE`] rows never wait: they cannot hold much memory, and must never queue behind a
//! large page they have nothing to do with. Large pages wait first come, first served; the wait
//! is bounded by the request's deadline (see `middleware`). The rows a statement returns before
//! admission are bounded by the request pool: at most `DATABASE_POOL_SIZE` statements of at most
//! 5000 rows run at once.

use tokio::sync::{Semaphore, SemaphorePermit};

/// The most rows a page may have and still be built without waiting.
pub const SMALL_PAGE: usize = 100;

/// The rows of large pages being built.
pub struct Rows {
    permits: Semaphore,
}

/// A page's admission: holds its rows' permits until dropped.
pub struct Admitted<'a>(#[allow(dead_code)] Option<SemaphorePermit<'a>>);

impl Rows {
    /// Room for `capacity` rows at once (at least 5000, the largest page, so every page fits).
    pub fn new(capacity: u32) -> Self {
        Self {
            permits: Semaphore::new(capacity as usize),
        }
    }

    /// Waits until a page of `rows` rows may be built.
    pub async fn admit(&self, rows: usize) -> Admitted<'_> {
        if rows <= SMALL_PAGE {
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
        let rows = Rows::new(5000);
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
    async fn a_page_takes_permits_for_the_rows_it_has() {
        let rows = Rows::new(5000);
        let page = rows.admit(180).await;
        assert_eq!(rows.available(), 5000 - 180);
        drop(page);
        assert_eq!(rows.available(), 5000);
    }
}
