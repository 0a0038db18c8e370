//! The switch feed (spec §5): the write path through which the telephony switch reports every
//! call's state. `report` parses and validates, `repo` writes, `routes` serves.

pub mod demo;
pub mod repo;
pub mod report;
pub mod routes;
