//! Who is calling: bearer tokens (`token`), their extraction from requests (`extractor`) and the
//! OAuth 2.0 token endpoint that hands them to apps (`oauth`).

pub mod cache;
pub mod extractor;
pub mod oauth;
pub mod token;

pub use token::Caller;
