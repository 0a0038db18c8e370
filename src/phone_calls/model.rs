//! The PhoneCall resource and the list envelope as JSON (spec §2.4, §2.5): nulls left out,
//! dates in UTC with `Z`, the `fields` projection, and `next`/`prev` links.

use std::io::{self, Write as _};

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::query::{self, Field, Fields, ListRequest};
use super::repo::{CallRow, Views};
use crate::call::View;
use crate::time::format_utc;

#[derive(Serialize)]
struct Links {
    #[serde(rename = "self")]
    self_link: String,
}

/// One PhoneCall of a page.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answered: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_call_view: Option<ViewsJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<Links>,
}

impl<'a> Entry<'a> {
    fn new(call: &'a CallRow, fields: Fields) -> Self {
        let want = |field: Field| fields.contains(field);
        Entry {
            id: call.id,
            extension: want(Field::Extension).then_some(call.extension.as_str()),
            owner_id: want(Field::OwnerId).then(|| call.owner_id.to_string()),
            owner_name: want(Field::OwnerName).then_some(call.owner_name.as_str()),
            published: want(Field::Published).then(|| format_utc(call.published)),
            answered: call
                .answered
                .filter(|_| want(Field::Answered))
                .map(format_utc),
            nonce: call.nonce.as_deref().filter(|_| want(Field::Nonce)),
            phone_call_view: call
                .views
                .as_ref()
                .filter(|_| want(Field::PhoneCallView))
                .map(|views| match views {
                    Views::Rows(rows) => ViewsJson::Rows(rows),
                    Views::Json(json) => ViewsJson::Json(json),
                }),
            links: want(Field::Links).then(|| Links {
                self_link: format!(
                    "/uapi/phoneCalls/{}/{}/{}",
                    call.owner_user_id, call.extension, call.id
                ),
            }),
        }
    }
}

/// A call's views (`phoneCallView`): each view's non-null fields, dates as `format_utc` writes
/// them, in the order of spec §2.5.
enum ViewsJson<'a> {
    Rows(&'a [View]),
    /// Already JSON (the baseline statement's answer).
    Json(&'a RawValue),
}

impl Serialize for ViewsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ViewsJson::Rows(rows) => serializer.collect_seq(rows.iter().map(ViewJson::new)),
            ViewsJson::Json(json) => json.serialize(serializer),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ViewJson<'a> {
    id: &'a str,
    extension: &'a str,
    source: &'a [String],
    destination: &'a [String],
    flow: i16,
    status: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    ringing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answered: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parked_pos: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parked_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_hold: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disposition: Option<i16>,
}

impl<'a> ViewJson<'a> {
    fn new(view: &'a View) -> Self {
        let date = |at: Option<DateTime<Utc>>| at.map(format_utc);
        ViewJson {
            id: &view.id,
            extension: &view.extension,
            source: &view.source,
            destination: &view.destination,
            flow: view.flow,
            status: view.status,
            ringing: date(view.ringing),
            caller_id: view.caller_id.as_deref(),
            recording: date(view.recording),
            answered: date(view.answered),
            parked: date(view.parked),
            parked_pos: view.parked_pos,
            parked_by: view.parked_by.as_deref(),
            on_hold: date(view.on_hold),
            holder: view.holder,
            disposition: view.disposition,
        }
    }
}

/// A page of the list as JSON, written as its calls arrive: a page of 5,000 calls is held as
/// its JSON alone, never as rows and calls and JSON at once. The bytes are those of serde's
/// compact form of `{startIndex, itemsPerPage, totalResults, entry, next, prev}`, but for a
/// space after the comma between the views of a call: PostgreSQL's `json_agg` wrote that space
/// when it built the views (before issue 10), and the answers stay byte for byte what clients
/// have always received (`tests/api/list_compare.rs`).
pub struct PageWriter {
    start: u32,
    count: u32,
    fields: Fields,
    /// The request's own path and query, which `next` and `prev` repeat.
    path: String,
    query: String,
    body: Vec<u8>,
    calls: usize,
    total: i64,
    failed: Option<serde_json::Error>,
}

impl PageWriter {
    pub fn new(request: &ListRequest, path: String, query: String) -> Self {
        PageWriter {
            start: request.start_index,
            count: request.count,
            fields: request.fields,
            path,
            query,
            body: Vec::new(),
            calls: 0,
            total: 0,
            failed: None,
        }
    }

    /// Adds the page's next call; `total` is the count of every matching call. Returns the
    /// call's JSON as the page holds it, the very bytes [`call_json`] makes of it.
    pub fn push(&mut self, call: &CallRow, total: i64) -> &[u8] {
        if self.calls == 0 {
            self.total = total;
            self.body
                .reserve(256 + 640 * (self.count as usize).min(SMALL_PAGE_HINT));
            let _ = write!(
                self.body,
                "{{\"startIndex\":{},\"itemsPerPage\":{},\"totalResults\":{total},\"entry\":[",
                self.start, self.count
            );
        } else {
            self.body.push(b',');
        }
        self.calls += 1;
        let at = self.body.len();
        if let Err(e) = write_entry(&mut self.body, call, self.fields) {
            self.failed.get_or_insert(e);
        }
        &self.body[at..]
    }

    /// How many calls the page has so far.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// The page's JSON, or `None` when it has no call.
    pub fn finish(mut self) -> serde_json::Result<Option<Vec<u8>>> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.calls == 0 {
            return Ok(None);
        }
        self.body.push(b']');
        let (start, count) = (self.start, self.count);
        if i64::from(start) + i64::from(count) < self.total {
            self.body.extend_from_slice(b",\"next\":");
            let link = page_link(&self.path, &self.query, start + count);
            serde_json::to_writer(&mut self.body, &link)?;
        }
        if start > 0 {
            self.body.extend_from_slice(b",\"prev\":");
            let link = page_link(&self.path, &self.query, start.saturating_sub(count));
            serde_json::to_writer(&mut self.body, &link)?;
        }
        self.body.push(b'}');
        Ok(Some(self.body))
    }
}

/// One call alone as JSON, as a page's `entry` would show it with `fields` (a live stream's
/// `upsert`).
pub fn call_json(call: &CallRow, fields: Fields) -> serde_json::Result<String> {
    let mut body = Vec::with_capacity(640);
    write_entry(&mut body, call, fields)?;
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8(body).unwrap_or_default())
}

/// One call's JSON, written the same way into a page and alone.
fn write_entry(out: &mut Vec<u8>, call: &CallRow, fields: Fields) -> serde_json::Result<()> {
    let formatter = ViewsSpaced {
        open: Vec::new(),
        views_depth: 2,
    };
    let mut serializer = serde_json::Serializer::with_formatter(out, formatter);
    Entry::new(call, fields).serialize(&mut serializer)
}

/// The most calls whose JSON room is reserved up front.
const SMALL_PAGE_HINT: usize = 100;

/// Which containers (`true`: an array) are open where the formatter writes, and how deep the
/// `phoneCallView` arrays are: the only arrays that deep (two when a call is written alone: the
/// call, its views).
struct ViewsSpaced {
    open: Vec<bool>,
    views_depth: usize,
}

impl Formatter for ViewsSpaced {
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open.push(true);
        CompactFormatter.begin_array(writer)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open.pop();
        CompactFormatter.end_array(writer)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open.push(false);
        CompactFormatter.begin_object(writer)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open.pop();
        CompactFormatter.end_object(writer)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if !first && self.open.len() == self.views_depth && self.open.last() == Some(&true) {
            writer.write_all(b", ")
        } else {
            CompactFormatter.begin_array_value(writer, first)
        }
    }
}

/// A request's query without its access token, in its order: what a page's links repeat, and
/// what a live stream is resumed by (`streams::session::RequestKey`).
pub fn query_without_token(query: &str) -> Vec<(String, String)> {
    query::pairs(query)
        .into_iter()
        .filter(|(name, _)| name != "accessRequestToken")
        .collect()
}

/// The same request with `startIndex` moved, and without any access token.
pub fn page_link(path: &str, query: &str, start_index: u32) -> String {
    let mut pairs = query_without_token(query);
    let start = ("startIndex".to_string(), start_index.to_string());
    match pairs.iter().position(|(name, _)| name == "startIndex") {
        Some(i) => pairs[i] = start,
        None => {
            let after_count = pairs
                .iter()
                .position(|(name, _)| name == "count")
                .map_or(0, |i| i + 1);
            pairs.insert(after_count, start);
        }
    }
    let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{path}?{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_move_start_index_and_drop_the_token() {
        assert_eq!(
            page_link(
                "/uapi/phoneCalls/@me/@self/",
                "count=20&sortOrder=descending&accessRequestToken=Bearer%20x",
                20
            ),
            "/uapi/phoneCalls/@me/@self/?count=20&startIndex=20&sortOrder=descending"
        );
        assert_eq!(
            page_link("/p", "startIndex=40&count=20", 20),
            "/p?startIndex=20&count=20"
        );
        assert_eq!(page_link("/p", "", 20), "/p?startIndex=20");
        assert_eq!(
            page_link("/p", "filterBy=destination&filterValue=%2B4420", 5),
            "/p?startIndex=5&filterBy=destination&filterValue=%2B4420"
        );
    }
}
