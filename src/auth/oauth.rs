//! `POST /oauth/token.php` (alias `/oauth/token`): the OAuth 2.0 client-credentials grant for
//! trusted apps (RFC 6749 §4.4), with errors as RFC 6749 §5.2 bodies.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;

use super::token;
use crate::http::body::{read_limited, BodyError};
use crate::http::ApiError;
use crate::http::AppState;

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
}

#[derive(Serialize)]
struct ErrorResponse {
    error: &'static str,
    error_description: &'static str,
}

/// An RFC 6749 §5.2 error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OAuthError {
    InvalidRequest(&'static str),
    UnsupportedGrantType,
    InvalidClient,
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl OAuthError {
    fn response(self) -> HttpResponse {
        let (status, error, error_description) = match self {
            Self::InvalidRequest(why) => (StatusCode::BAD_REQUEST, "invalid_request", why),
            Self::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only grant_type=client_credentials is supported.",
            ),
            Self::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed, or the app may not use this grant.",
            ),
        };
        let mut response = HttpResponse::build(status).json(ErrorResponse {
            error,
            error_description,
        });
        if self == Self::InvalidClient {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="uapi""#),
            );
        }
        no_store(response)
    }
}

/// The client's claimed identity, from the form or from HTTP Basic.
struct ClientCredentials {
    client_id: String,
    client_secret: String,
}

/// Parses and checks everything that needs no database: content type, form, grant type and the
/// client authentication method.
fn parse_request(req: &HttpRequest, body: &[u8]) -> Result<ClientCredentials, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "The body must be application/x-www-form-urlencoded.",
        ));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidRequest("The body is not a valid form."))?;
    // Nothing with a control character (NUL above all, which PostgreSQL refuses in text) is a
    // credential this service issued; say so before any of it reaches the database.
    if params
        .iter()
        .any(|(name, value)| has_control(name) || has_control(value))
    {
        return Err(OAuthError::InvalidRequest(
            "The form must not contain control characters.",
        ));
    }
    let single = |name: &str| -> Result<Option<&str>, OAuthError> {
        let mut values = params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (_, Some(_)) => Err(OAuthError::InvalidRequest(
                "A parameter was given more than once.",
            )),
            (value, None) => Ok(value.filter(|v| !v.is_empty())),
        }
    };
    let grant_type = single("grant_type")?;
    let form_id = single("client_id")?;
    let form_secret = single("client_secret")?;
    match grant_type {
        None => return Err(OAuthError::InvalidRequest("grant_type is missing.")),
        Some("client_credentials") => {}
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    }
    match basic_credentials(req)? {
        Some(basic) => {
            if form_secret.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "Use one client authentication method: HTTP Basic or client_secret, not both.",
                ));
            }
            if form_id.is_some_and(|id| id != basic.client_id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id differs from the HTTP Basic user.",
                ));
            }
            Ok(basic)
        }
        None => match (form_id, form_secret) {
            (Some(id), Some(secret)) => Ok(ClientCredentials {
                client_id: id.to_string(),
                client_secret: secret.to_string(),
            }),
            (None, _) => Err(OAuthError::InvalidRequest("client_id is missing.")),
            (Some(_), None) => Err(OAuthError::InvalidRequest("client_secret is missing.")),
        },
    }
}

/// HTTP Basic client authentication (RFC 6749 §2.3.1): both parts are form-urlencoded before
/// being joined with a colon and base64-encoded.
fn basic_credentials(req: &HttpRequest) -> Result<Option<ClientCredentials>, OAuthError> {
    let mut headers = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = headers.next() else {
        return Ok(None);
    };
    if headers.next().is_some() {
        return Err(OAuthError::InvalidRequest(
            "Send one Authorization header, not several.",
        ));
    }
    let malformed = OAuthError::InvalidRequest("The Authorization header is not valid HTTP Basic.");
    let value = value.to_str().map_err(|_| malformed)?.trim();
    let (scheme, encoded) = value.split_once(' ').ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidRequest(
            "Only HTTP Basic client authentication is accepted in Authorization.",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or(malformed)?;
    let unescape = |s: &str| -> Result<String, OAuthError> {
        let plus_as_space = s.replace('+', " ");
        percent_encoding::percent_decode_str(&plus_as_space)
            .decode_utf8()
            .map(|v| v.into_owned())
            .map_err(|_| malformed)
    };
    let (client_id, client_secret) = (unescape(id)?, unescape(secret)?);
    if client_id.is_empty() || client_secret.is_empty() {
        return Err(malformed);
    }
    if has_control(&client_id) || has_control(&client_secret) {
        return Err(OAuthError::InvalidRequest(
            "The HTTP Basic credentials must not contain control characters.",
        ));
    }
    Ok(Some(ClientCredentials {
        client_id,
        client_secret,
    }))
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Checks the app's credentials and issues a token for its account: `None` when the client is
/// unknown, its secret wrong, or the app not trusted.
async fn authenticate_and_issue(
    pool: &crate::db::Pool,
    credentials: ClientCredentials,
    ttl: std::time::Duration,
) -> Result<Option<(token::IssuedToken, i64, i64)>, sqlx::Error> {
    let mut session = pool.session().await?;
    let app: Option<(i64, i64, Vec<u8>, bool)> = crate::metrics::statement(
        "app_lookup",
        sqlx::query_as(
            "SELECT id, user_id, client_secret_sha256, trusted FROM apps WHERE client_id = $1",
        )
        .persistent(pool.prepared())
        .bind(&credentials.client_id)
        .fetch_optional(&mut *session),
    )
    .await?;
    session.end().await?;
    let presented = token::digest(&credentials.client_secret);
    match app {
        Some((app_id, user_id, stored, trusted))
            if token::digests_equal(&stored, &presented) && trusted =>
        {
            let issued = token::issue(pool, user_id, ttl, Some(app_id)).await?;
            Ok(Some((issued, app_id, user_id)))
        }
        _ => Ok(None),
    }
}

/// Largest form accepted.
pub const FORM_LIMIT: usize = 16 * 1024;

/// The token endpoint.
pub async fn issue_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    tokens: web::Data<super::cache::TokenCache>,
) -> Result<HttpResponse, ApiError> {
    // Over the limit or unreadable, the form still gets an RFC 6749 answer.
    let body = match read_limited(&req, payload, FORM_LIMIT).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return Ok(OAuthError::InvalidRequest("The body is larger than 16 KiB.").response())
        }
        Err(BodyError::Unreadable) => {
            return Ok(OAuthError::InvalidRequest("The body could not be read.").response())
        }
    };
    let credentials = match parse_request(&req, &body) {
        Ok(credentials) => credentials,
        Err(error) => return Ok(error.response()),
    };
    let ttl = state.settings.token_ttl;
    let issued = state
        .db
        .run(|pool| async move { authenticate_and_issue(&pool, credentials, ttl).await })
        .await?;
    let Some((issued, app_id, user_id)) = issued else {
        return Ok(OAuthError::InvalidClient.response());
    };
    // Usable here at once, even if someone presented it before it existed.
    tokens.remove(&token::digest(&issued.token));
    tracing::info!(app_id, user_id, "access token issued");
    Ok(no_store(HttpResponse::Ok().json(TokenResponse {
        access_token: &issued.token,
        token_type: "Bearer",
        expires_in: state.settings.token_ttl.as_secs(),
    })))
}
