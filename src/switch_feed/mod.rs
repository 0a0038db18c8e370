//! The switch feed (spec §5): the write path through which the telephony switch reports every
//! call's state. `body` reads a request's JSON (refusing repeated keys), `report` parses and validates, `repo` writes, `queue` groups concurrent single reports
//! into batches, `routes` serves.

pub mod body;
pub mod demo;
pub mod queue;
pub mod repo;
pub mod report;
pub mod routes;
