//! Who is calling: accounts' roles (`role`), bearer tokens (`token`), the cache of resolved
//! tokens (`cache`), their extraction from requests (`extractor`) and the OAuth 2.0 token
//! endpoint that hands them to apps (`oauth`).

pub mod cache;
pub mod extractor;
pub mod oauth;
mod role;
pub mod token;

pub use role::Role;
pub use token::Caller;
