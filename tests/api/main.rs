//! The one integration test binary: every test talks to a real PostgreSQL and, where HTTP is
//! involved, to the real application on a real port.

mod helpers;

mod auth;
mod cli;
mod docs;
mod fuzz;
mod hardening;
mod health;
mod list_compare;
mod list_errors;
mod list_filters;
mod list_offline;
mod list_visibility;
mod matcher;
mod metrics;
mod oauth;
mod plans;
mod pooler;
mod read_replica;
mod reporting;
mod schema;
mod shutdown;
mod streams;
mod switch_feed;
mod switch_validation;
