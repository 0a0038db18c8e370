//! The OpenAPI 3.1 document of the service, generated from this code: served at
//! `GET /openapi.json` and written to `docs/openapi.json` by `phonecalls openapi` (a test fails
//! when the committed file differs). Every endpoint, parameter, body, answer and error code is
//! declared here, in one place; the value lists of `filterBy`, `filterOp`, `sortBy` and
//! `fields` come from the list's own parser, so the document cannot drift from it.

use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::phone_calls::query::{Field, FilterField, FilterOp, SortBy};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "phonecalls",
        description = "Live telephone calls served through the VoipNow UnifiedAPI PhoneCalls interface, and the switch feed that keeps them. docs/api.md explains every rule.",
        license(name = "MIT")
    ),
    paths(
        list_calls,
        list_one_call,
        create_call,
        replace_calls,
        delete_calls,
        create_one,
        replace_one,
        delete_one,
        issue_token,
        issue_token_alias,
        put_report,
        post_batch,
        livez,
        readyz,
        openapi_json
    ),
    components(schemas(
        ListPage,
        PhoneCall,
        PhoneCallView,
        Links,
        ErrorEnvelope,
        ErrorBody,
        TokenForm,
        TokenResponse,
        OAuthError,
        Report,
        ReportView,
        BatchRequest,
        BatchReport,
        BatchAnswer,
        BatchResult,
        Applied,
        Status,
        SortOrder,
        GrantType
    )),
    modifiers(&Security, &ParserValues),
    tags(
        (name = "phoneCalls", description = "UAPI: the live calls a caller may see"),
        (name = "oauth", description = "OAuth 2.0 client credentials"),
        (name = "switch", description = "The switch feed: how call state gets in"),
        (name = "operations", description = "Probes and this document")
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON, ending with a newline (as `docs/openapi.json` holds it).
pub fn json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serializes");
    text.push('\n');
    text
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "accessRequestToken",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "accessRequestToken",
                "The token as UAPI clients may send it: `Bearer%20<token>` or the bare token.",
            ))),
        );
        components.add_security_scheme(
            "clientBasic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// Fills the enumerations of the list's query parameters from the parser itself.
struct ParserValues;

impl Modify for ParserValues {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut document = serde_json::to_value(&*openapi).expect("the document serializes");
        let lists: [(&str, Vec<&str>); 3] = [
            (
                "filterBy",
                FilterField::ALL.iter().map(|f| f.name()).collect(),
            ),
            ("filterOp", FilterOp::ALL.iter().map(|o| o.name()).collect()),
            ("sortBy", SortBy::ALL.iter().map(|s| s.name()).collect()),
        ];
        for path in [
            "/uapi/phoneCalls/{userId}/{extension}/",
            "/uapi/phoneCalls/{userId}/{extension}/{phoneCallId}",
        ] {
            let Some(parameters) = document
                .pointer_mut(&format!(
                    "/paths/{}/get/parameters",
                    path.replace('/', "~1")
                ))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters.iter_mut() {
                let name = parameter["name"].as_str().unwrap_or_default().to_string();
                if let Some((_, values)) = lists.iter().find(|(n, _)| *n == name) {
                    parameter["schema"]["enum"] = Value::from(values.clone());
                }
                if name == "fields" {
                    let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                    parameter["description"] = Value::from(format!(
                        "A comma-separated list of PhoneCall fields to return ({}); `id` is always returned.",
                        names.join(", ")
                    ));
                }
            }
        }
        *openapi = serde_json::from_value(document).expect("the document reads back");
    }
}

// ---------------------------------------------------------------------------------------------
// Schemas: the shapes on the wire (the serializers are in `phone_calls::model`,
// `switch_feed::routes`, `auth::oauth` and `http::error`).
// ---------------------------------------------------------------------------------------------

/// A page of live calls.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ListPage {
    #[schema(minimum = 0, maximum = 5000)]
    start_index: u32,
    /// The `count` in force.
    #[schema(minimum = 1, maximum = 5000)]
    items_per_page: u32,
    /// Every matching live call.
    #[schema(minimum = 1)]
    total_results: i64,
    entry: Vec<PhoneCall>,
    /// The next page (the same request, `startIndex` moved by `count`), when there is one.
    next: Option<String>,
    /// The previous page, when there is one.
    prev: Option<String>,
}

/// A call. Fields that are null are left out; `fields` may leave out all but `id`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PhoneCall {
    #[schema(format = Uuid)]
    id: String,
    /// The full number of the extension charged for the call, such as `0003*210`.
    extension: Option<String>,
    /// The organization that owns the call.
    owner_id: Option<String>,
    owner_name: Option<String>,
    #[schema(format = DateTime)]
    published: Option<String>,
    #[schema(format = DateTime)]
    answered: Option<String>,
    nonce: Option<String>,
    phone_call_view: Option<Vec<PhoneCallView>>,
    links: Option<Links>,
}

/// One party's view of a call.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PhoneCallView {
    /// `00`, `01`, …
    id: String,
    extension: String,
    source: Vec<String>,
    destination: Vec<String>,
    /// 2 local, 4 outgoing public, 8 incoming public.
    #[schema(minimum = 2, maximum = 8)]
    flow: i16,
    /// 0 unknown, 1 off hook, 2 trying, 3 ringing, 4 other side ringing, 5 on call.
    #[schema(minimum = 0, maximum = 5)]
    status: i16,
    #[schema(format = DateTime)]
    ringing: Option<String>,
    caller_id: Option<String>,
    #[schema(format = DateTime)]
    recording: Option<String>,
    #[schema(format = DateTime)]
    answered: Option<String>,
    #[schema(format = DateTime)]
    parked: Option<String>,
    parked_pos: Option<i32>,
    parked_by: Option<String>,
    #[schema(format = DateTime)]
    on_hold: Option<String>,
    #[schema(minimum = 0, maximum = 1)]
    holder: Option<i16>,
    /// 0 answered, 1 busy, 2 failed, 3 no answer, 4 unknown, 5 not allowed.
    #[schema(minimum = 0, maximum = 5)]
    disposition: Option<i16>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Links {
    /// `/uapi/phoneCalls/{ownerUserId}/{extension}/{id}`
    #[serde(rename = "self")]
    self_link: String,
}

/// Every error but the OAuth endpoint's.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorBody {
    #[schema(example = "count_invalid")]
    code: ErrorCode,
    /// For people; never carries SQL, driver, file or stack text.
    message: String,
}

/// The error codes.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum ErrorCode {
    UserInvalid,
    ExtensionInvalid,
    CountInvalid,
    StartindexInvalid,
    FilterbyInvalid,
    FilteropInvalid,
    FiltervalueInvalid,
    SortbyInvalid,
    SortorderInvalid,
    UpdatedsinceInvalid,
    FieldsInvalid,
    RequestInvalid,
    AccessDenied,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    InternalServerError,
    RequestNotImplemented,
    ServiceUnavailable,
}

/// The client-credentials grant (RFC 6749 §4.4). With HTTP Basic, leave out `client_secret`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TokenForm {
    grant_type: GrantType,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// Accepted and ignored.
    r#type: Option<String>,
    /// Accepted and ignored.
    redirect_uri: Option<String>,
}

/// The only grant this service carries out.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum GrantType {
    ClientCredentials,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TokenResponse {
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: String,
    expires_in: u64,
}

/// RFC 6749 §5.2.
#[derive(ToSchema)]
#[allow(dead_code)]
struct OAuthError {
    error: OAuthErrorCode,
    error_description: String,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum OAuthErrorCode {
    InvalidRequest,
    UnsupportedGrantType,
    InvalidClient,
}

/// The full current state of one call, as the switch reports it. Other fields are ignored.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Report {
    /// Grows with every report of the call; a report not above the stored one changes nothing.
    #[schema(minimum = 0)]
    sequence: i64,
    /// Needed by a call's first report.
    extension: Option<String>,
    #[schema(format = DateTime)]
    published: Option<String>,
    #[schema(format = DateTime)]
    answered: Option<String>,
    /// The call is over.
    #[schema(format = DateTime)]
    ended: Option<String>,
    #[schema(max_length = 256)]
    nonce: Option<String>,
    /// Needed by a call's first report; replaces every view when present.
    #[schema(min_items = 1, max_items = 32)]
    phone_call_view: Option<Vec<ReportView>>,
}

/// A view as the switch reports it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ReportView {
    id: String,
    extension: String,
    #[schema(max_items = 16)]
    source: Vec<String>,
    #[schema(max_items = 16)]
    destination: Vec<String>,
    #[schema(minimum = 2, maximum = 8)]
    flow: i16,
    #[schema(minimum = 0, maximum = 5)]
    status: i16,
    #[schema(format = DateTime)]
    ringing: Option<String>,
    #[schema(max_length = 256)]
    caller_id: Option<String>,
    #[schema(format = DateTime)]
    recording: Option<String>,
    #[schema(format = DateTime)]
    answered: Option<String>,
    #[schema(format = DateTime)]
    parked: Option<String>,
    parked_pos: Option<i32>,
    parked_by: Option<String>,
    #[schema(format = DateTime)]
    on_hold: Option<String>,
    #[schema(minimum = 0, maximum = 1)]
    holder: Option<i16>,
    #[schema(minimum = 0, maximum = 5)]
    disposition: Option<i16>,
}

/// Reports, each a `BatchReport`. A report that does not parse does not fail the request: it
/// is refused in its own result, so any object is accepted here.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BatchRequest {
    #[schema(min_items = 1, max_items = 1000, value_type = Vec<Value>)]
    reports: Vec<BatchReport>,
}

/// A report with its call's id.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BatchReport {
    #[schema(format = Uuid)]
    id: String,
    #[serde(flatten)]
    report: Report,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct BatchAnswer {
    /// One per report, in order.
    results: Vec<BatchResult>,
}

/// What became of one report of a batch.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum BatchResult {
    /// Applied (201 created, 200 otherwise), or ignored as not newer than the stored state.
    Done {
        #[schema(format = Uuid)]
        id: String,
        status: u16,
        sequence: i64,
        applied: bool,
    },
    /// Refused (400); nothing of it was stored.
    Refused {
        id: Option<String>,
        status: u16,
        error: ErrorBody,
    },
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Applied {
    #[schema(format = Uuid)]
    id: String,
    sequence: i64,
    /// Whether the report changed the call (false: a replay, or a late report).
    applied: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Status {
    #[schema(example = "ok")]
    status: String,
}

// ---------------------------------------------------------------------------------------------
// Operations.
// ---------------------------------------------------------------------------------------------

/// The list's query (all optional; a parameter given twice is invalid).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
struct ListQuery {
    /// Calls per page.
    #[param(minimum = 1, maximum = 5000)]
    count: Option<u32>,
    /// The first call of the page, from 0.
    #[param(minimum = 0, maximum = 5000)]
    start_index: Option<u32>,
    /// The field to filter on (text: id, extension, source, destination, callerId; dates:
    /// published, answered; integers: ownerId, status, flow).
    filter_by: Option<String>,
    /// How to compare (integers take equals, greaterThan, lessThan, inArray, present).
    filter_op: Option<String>,
    /// The value, at most 256 characters without control characters; for inArray a comma list
    /// of at most 100 such items (a request line must stay under 64 KiB, encoded).
    #[param(max_length = 5000)]
    filter_value: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<SortOrder>,
    /// Calls whose state changed at or after this instant (xs:dateTime with a timezone).
    #[param(format = DateTime)]
    updated_since: Option<String>,
    fields: Option<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
enum SortOrder {
    Ascending,
    Descending,
}

/// The live calls a caller may see.
///
/// With `Accept: text/event-stream` the same list is a live stream of server-sent events
/// instead of a page: `snapshot` (this page), then `upsert`, `remove` and `reset` as calls
/// change, with heartbeats; errors before it starts are the ones below (docs/api.md §8).
#[utoipa::path(
    get,
    path = "/uapi/phoneCalls/{userId}/{extension}/",
    tag = "phoneCalls",
    operation_id = "listPhoneCalls",
    params(
        ("userId" = String, Path, pattern = r"^(@me|@viewer|@owner|[1-9][0-9]{0,17})$", description = "`@me` or `@viewer` (the caller; for an organization or admin account its whole context), `@owner`, or a decimal user id"),
        ("extension" = String, Path, pattern = r"^(@self|[0-9]{4}\*[0-9]{3,5}|[0-9]{3,5})$", description = "`@self`, a full number `0003*210` or a short one `210`"),
        ListQuery
    ),
    responses(
        (status = 200, description = "A page of calls", body = ListPage),
        (status = 204, description = "No call matches, or startIndex is past the end"),
        (status = 400, description = "A path or query parameter is invalid (its own code)", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such route", body = ErrorEnvelope),
        (status = 431, description = "The request head is larger than the HTTP server reads (about 32 KiB): answered by the HTTP layer, without a body"),
        (status = 503, description = "The database is unavailable or the deadline passed; for a stream, MAX_STREAMS or MAX_STREAMS_PER_TOKEN is reached or the instance is shutting down; see Retry-After", body = ErrorEnvelope)
    ),
    security(("bearer" = []), ("accessRequestToken" = []))
)]
#[allow(dead_code)]
fn list_calls() {}

/// One live call, if the caller may see it (204 otherwise).
#[utoipa::path(
    get,
    path = "/uapi/phoneCalls/{userId}/{extension}/{phoneCallId}",
    tag = "phoneCalls",
    operation_id = "getPhoneCall",
    params(
        ("userId" = String, Path, pattern = r"^(@me|@viewer|@owner|[1-9][0-9]{0,17})$", description = "As for the list"),
        ("extension" = String, Path, pattern = r"^(@self|[0-9]{4}\*[0-9]{3,5}|[0-9]{3,5})$", description = "As for the list"),
        ("phoneCallId" = String, Path, description = "The call's id; a malformed, unknown, ended or foreign one gives 204"),
        ListQuery
    ),
    responses(
        (status = 200, description = "A page of that one call", body = ListPage),
        (status = 204, description = "No such live call for the caller"),
        (status = 400, description = "A path or query parameter is invalid (its own code)", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 431, description = "The request head is larger than the HTTP server reads (about 32 KiB): answered by the HTTP layer, without a body"),
        (status = 503, description = "The database is unavailable or the deadline passed", body = ErrorEnvelope)
    ),
    security(("bearer" = []), ("accessRequestToken" = []))
)]
#[allow(dead_code)]
fn list_one_call() {}

/// Documents a UAPI method this service does not carry out (placing, controlling and hanging up
/// calls is the switch's job): 501 once authenticated.
macro_rules! not_implemented {
    ($name:ident, $method:ident, $path:literal, $operation:literal, $($param:tt)*) => {
        /// Placing, controlling and hanging up calls is the switch's job: 501 once authenticated.
        #[utoipa::path(
            $method,
            path = $path,
            tag = "phoneCalls",
            operation_id = $operation,
            params($($param)*),
            responses(
                (status = 401, description = "No valid token", body = ErrorEnvelope),
                (status = 501, description = "Not carried out by this service", body = ErrorEnvelope)
            ),
            security(("bearer" = []))
        )]
        #[allow(dead_code)]
        fn $name() {}
    };
}

not_implemented!(
    create_call,
    post,
    "/uapi/phoneCalls/{userId}/{extension}/",
    "createPhoneCall",
    ("userId" = String, Path, description = "As for the list"),
    ("extension" = String, Path, description = "As for the list")
);
not_implemented!(
    replace_calls,
    put,
    "/uapi/phoneCalls/{userId}/{extension}/",
    "replacePhoneCalls",
    ("userId" = String, Path, description = "As for the list"),
    ("extension" = String, Path, description = "As for the list")
);
not_implemented!(
    delete_calls,
    delete,
    "/uapi/phoneCalls/{userId}/{extension}/",
    "deletePhoneCalls",
    ("userId" = String, Path, description = "As for the list"),
    ("extension" = String, Path, description = "As for the list")
);
not_implemented!(
    create_one,
    post,
    "/uapi/phoneCalls/{userId}/{extension}/{phoneCallId}",
    "createPhoneCallById",
    ("userId" = String, Path, description = "As for the list"),
    ("extension" = String, Path, description = "As for the list"),
    ("phoneCallId" = String, Path, description = "A call id")
);
not_implemented!(
    replace_one,
    put,
    "/uapi/phoneCalls/{userId}/{extension}/{phoneCallId}",
    "replacePhoneCall",
    ("userId" = String, Path, description = "As for the list"),
    ("extension" = String, Path, description = "As for the list"),
    ("phoneCallId" = String, Path, description = "A call id")
);
not_implemented!(
    delete_one,
    delete,
    "/uapi/phoneCalls/{userId}/{extension}/{phoneCallId}",
    "deletePhoneCall",
    ("userId" = String, Path, description = "As for the list"),
    ("extension" = String, Path, description = "As for the list"),
    ("phoneCallId" = String, Path, description = "A call id")
);

/// Issues an access token to a trusted app.
#[utoipa::path(
    post,
    path = "/oauth/token.php",
    tag = "oauth",
    operation_id = "issueToken",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "invalid_request or unsupported_grant_type", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError),
        (status = 503, description = "The database is unavailable", body = ErrorEnvelope)
    ),
    security((), ("clientBasic" = []))
)]
#[allow(dead_code)]
fn issue_token() {}

/// The same as `/oauth/token.php`.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    operation_id = "issueTokenAlias",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "invalid_request or unsupported_grant_type", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError),
        (status = 503, description = "The database is unavailable", body = ErrorEnvelope)
    ),
    security((), ("clientBasic" = []))
)]
#[allow(dead_code)]
fn issue_token_alias() {}

/// Reports the full current state of one call (switch accounts only).
#[utoipa::path(
    put,
    path = "/switch/v1/phoneCalls/{phoneCallId}",
    tag = "switch",
    operation_id = "reportPhoneCall",
    params(("phoneCallId" = String, Path, format = Uuid, description = "The call's id")),
    request_body(content = Report, content_type = "application/json", description = "At most 256 KiB; a key given twice in one object is refused"),
    responses(
        (status = 201, description = "The report created the call", body = Applied),
        (status = 200, description = "The report updated the call, or was not newer (applied false)", body = Applied),
        (status = 400, description = "request_invalid; nothing was stored", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not a switch account", body = ErrorEnvelope),
        (status = 408, description = "The body arrived too slowly", body = ErrorEnvelope),
        (status = 503, description = "Not written; sending again is safe", body = ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn put_report() {}

/// Reports many calls at once (switch accounts only).
#[utoipa::path(
    post,
    path = "/switch/v1/phoneCalls",
    tag = "switch",
    operation_id = "reportPhoneCalls",
    request_body(content = BatchRequest, content_type = "application/json", description = "At most 4 MiB"),
    responses(
        (status = 200, description = "One result per report, in order", body = BatchAnswer),
        (status = 400, description = "The body is not a batch; nothing was stored", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not a switch account", body = ErrorEnvelope),
        (status = 408, description = "The body arrived too slowly", body = ErrorEnvelope),
        (status = 503, description = "The database failed; sending the whole batch again is safe", body = ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn post_batch() {}

/// 200 while the process runs.
#[utoipa::path(get, path = "/livez", tag = "operations", operation_id = "livez",
    responses((status = 200, description = "Alive", body = Status)))]
#[allow(dead_code)]
fn livez() {}

/// 200 when the database answers and the schema is migrated; 503 otherwise and while draining.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Not ready", body = ErrorEnvelope)
    ))]
#[allow(dead_code)]
fn readyz() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
#[allow(dead_code)]
fn openapi_json() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == json(),
            "docs/openapi.json is not the document the code generates: run `cargo run -- openapi --output docs/openapi.json`"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_lists_every_endpoint() {
        let document: Value = serde_json::from_str(&json()).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = document["paths"].as_object().unwrap();
        for path in [
            "/uapi/phoneCalls/{userId}/{extension}/",
            "/uapi/phoneCalls/{userId}/{extension}/{phoneCallId}",
            "/oauth/token.php",
            "/oauth/token",
            "/switch/v1/phoneCalls/{phoneCallId}",
            "/switch/v1/phoneCalls",
            "/livez",
            "/readyz",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path} is missing");
        }
        let filter_by = &document["paths"]["/uapi/phoneCalls/{userId}/{extension}/"]["get"]
            ["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "filterBy")
            .unwrap()["schema"]["enum"];
        assert_eq!(filter_by.as_array().unwrap().len(), FilterField::ALL.len());
        // Every reference leads to a schema of the document.
        let text = json();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for piece in text.split("\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but not defined"
            );
        }
    }
}
