//! The `Caller` extractor: resolves the bearer token of a request to its account, or answers
//! 401 `access_denied`. The token comes from `Authorization: Bearer …` (scheme in any case) or,
//! as UAPI clients may send it, from the `accessRequestToken` query parameter.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::cache::TokenCache;
use super::token::{self, Caller};
use crate::http::ApiError;
use crate::http::AppState;

/// Where a request carried its credential, before any check of the credential itself.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    /// No usable bearer credential at all (no header, another scheme, or an empty one).
    Missing,
    /// A bearer credential, still unverified.
    Bearer(String),
}

/// Reads the bearer credential of a request without touching the database.
pub fn credential(req: &HttpRequest) -> Credential {
    let mut authorizations = req.headers().get_all(header::AUTHORIZATION);
    if let Some(value) = authorizations.next() {
        // Two credentials are ambiguous: which one would be meant? Neither is used.
        if authorizations.next().is_some() {
            return Credential::Bearer(String::new());
        }
        let Ok(value) = value.to_str() else {
            return Credential::Bearer(String::new());
        };
        return bearer(value);
    }
    // Query strings are parsed leniently here: a malformed one simply carries no token.
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let mut tokens = params
        .into_iter()
        .filter(|(name, _)| name == "accessRequestToken");
    match (tokens.next(), tokens.next()) {
        (Some((_, value)), None) => match bearer(&value) {
            Credential::Missing if !value.trim().is_empty() => {
                Credential::Bearer(value.trim().to_string())
            }
            other => other,
        },
        (Some(_), Some(_)) => Credential::Bearer(String::new()),
        (None, _) => Credential::Missing,
    }
}

fn bearer(value: &str) -> Credential {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credential::Missing;
    }
    let rest = rest.trim();
    if rest.is_empty() {
        Credential::Missing
    } else {
        Credential::Bearer(rest.to_string())
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let credential = credential(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let tokens = req.app_data::<web::Data<TokenCache>>().cloned();
        Box::pin(async move {
            let token = match credential {
                Credential::Missing => return Err(ApiError::Unauthorized { token_sent: false }),
                Credential::Bearer(token) if !token::looks_like_token(&token) => {
                    return Err(ApiError::Unauthorized { token_sent: true })
                }
                Credential::Bearer(token) => token,
            };
            let (Some(state), Some(tokens)) = (state, tokens) else {
                return Err(ApiError::Internal("application state missing".into()));
            };
            let digest = token::digest(&token);
            if let Some(caller) = tokens.get(&digest) {
                crate::metrics::cache_lookup("tokens", true);
                return Ok(caller);
            }
            if tokens.is_known_unknown(&digest) {
                crate::metrics::cache_lookup("tokens", true);
                return Err(ApiError::Unauthorized { token_sent: true });
            }
            if tokens.is_enabled() {
                crate::metrics::cache_lookup("tokens", false);
            }
            let read_at = tokens.generation();
            let found = state
                .db
                .run(|pool| async move { token::lookup(&pool, &digest).await })
                .await?;
            let Some((caller, expires_at)) = found else {
                tokens.insert_unknown(digest, read_at);
                return Err(ApiError::Unauthorized { token_sent: true });
            };
            tokens.insert(digest, caller.clone(), expires_at, read_at);
            Ok(caller)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn header(value: &str) -> Credential {
        credential(
            &TestRequest::default()
                .insert_header(("Authorization", value))
                .to_http_request(),
        )
    }

    fn query(q: &str) -> Credential {
        credential(&TestRequest::with_uri(&format!("/x?{q}")).to_http_request())
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(
                header(&format!("{scheme} abc")),
                Credential::Bearer("abc".into())
            );
        }
    }

    #[test]
    fn other_schemes_and_bare_bearer_carry_no_token() {
        assert_eq!(header("Basic YTpi"), Credential::Missing);
        assert_eq!(header("Bearer"), Credential::Missing);
        assert_eq!(header("Bearer   "), Credential::Missing);
        assert_eq!(header(""), Credential::Missing);
    }

    #[test]
    fn the_query_parameter_takes_bearer_prefixed_or_plain_tokens() {
        assert_eq!(
            query("accessRequestToken=Bearer%20abc"),
            Credential::Bearer("abc".into())
        );
        assert_eq!(
            query("accessRequestToken=abc"),
            Credential::Bearer("abc".into())
        );
        assert_eq!(query("count=3"), Credential::Missing);
        assert_eq!(
            query("accessRequestToken=a&accessRequestToken=b"),
            Credential::Bearer(String::new())
        );
    }

    #[test]
    fn two_authorization_headers_carry_no_usable_token() {
        let req = TestRequest::default()
            .append_header(("Authorization", "Bearer a"))
            .append_header(("Authorization", "Bearer b"))
            .to_http_request();
        assert_eq!(credential(&req), Credential::Bearer(String::new()));
    }

    #[test]
    fn the_header_wins_over_the_query_parameter() {
        let req = TestRequest::with_uri("/x?accessRequestToken=Bearer%20q")
            .insert_header(("Authorization", "Bearer h"))
            .to_http_request();
        assert_eq!(credential(&req), Credential::Bearer("h".into()));
    }
}
