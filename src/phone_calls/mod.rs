//! The PhoneCalls resource of UAPI: `/uapi/phoneCalls/{userId}/{extension}[/{phoneCallId}]`.
//! `path` and `query` parse the request into typed values, `sql` compiles them into one
//! parameterized statement, `repo` resolves the path and runs it, `model` shapes the JSON and
//! `routes` holds the thin handlers.

pub mod model;
pub mod path;
pub mod query;
pub mod repo;
pub mod routes;
pub mod sql;
pub mod statements;
