//! The PhoneCalls resource of UAPI: `/uapi/phoneCalls/{userId}/{extension}[/{phoneCallId}]`.
//! `visibility` is the one place that says who sees what.
//! `path` and `query` parse the request into typed values, `sql` compiles them into one
//! parameterized statement (`sql/`: a builder at its base, `list` and `filter` over it), `repo` resolves the path and runs
//! it (`path_cache` remembers resolutions for a few seconds), `model` shapes the JSON, `routes`
//! holds the thin handlers (`admission` bounds the rows of large pages built at once), and `statements` shows the SQL a request sends, for operators and
//! benchmarks. `matcher` decides in Rust what the page statement decides for one call.

pub mod admission;
pub mod matcher;
pub mod model;
pub mod path;
mod path_cache;
pub mod query;
pub mod repo;
pub mod routes;
pub mod sql;
pub mod statements;
pub mod visibility;

pub use path_cache::PathCache;
