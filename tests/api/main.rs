//! The one integration test binary: every test talks to a real PostgreSQL and, where HTTP is
//! involved, to the real application on a real port.

mod helpers;

mod auth;
mod cli;
mod health;
mod list_offline;
mod oauth;
mod schema;
mod shutdown;
mod switch_feed;
mod switch_validation;
