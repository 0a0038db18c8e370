//! The PhoneCall resource and the list envelope as JSON (spec §2.4, §2.5): nulls left out,
//! dates in UTC with `Z`, the `fields` projection, and `next`/`prev` links.

use std::io;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::query::{self, Field, Fields, ListRequest};
use super::repo::{CallRow, Page, ViewRow, Views};
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
    Rows(&'a [ViewRow]),
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
    fn new(view: &'a ViewRow) -> Self {
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

/// A page of the list.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<'a> {
    start_index: u32,
    items_per_page: u32,
    total_results: i64,
    entry: Vec<Entry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<String>,
}

impl<'a> ListResponse<'a> {
    /// `path` and `query` are the request's own, so that `next` and `prev` repeat it.
    pub fn new(page: &'a Page, request: &ListRequest, path: &str, query: &str) -> Self {
        let (start, count) = (request.start_index, request.count);
        let next = (i64::from(start) + i64::from(count) < page.total)
            .then(|| page_link(path, query, start + count));
        let prev = (start > 0).then(|| page_link(path, query, start.saturating_sub(count)));
        ListResponse {
            start_index: start,
            items_per_page: count,
            total_results: page.total,
            entry: page
                .calls
                .iter()
                .map(|call| Entry::new(call, request.fields))
                .collect(),
            next,
            prev,
        }
    }
}

impl ListResponse<'_> {
    /// The page as JSON: compact, but for a space after the comma between the views of a call.
    /// PostgreSQL's `json_agg` wrote that space when it built the views (before issue 10), and
    /// the answers stay byte for byte what clients have always received.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(256 + 512 * self.entry.len());
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut body, ViewsSpaced::default());
        self.serialize(&mut serializer)?;
        Ok(body)
    }
}

/// Which containers (`true`: an array) are open where the formatter writes.
#[derive(Default)]
struct ViewsSpaced {
    open: Vec<bool>,
}

impl ViewsSpaced {
    /// The `phoneCallView` arrays are the only arrays four containers deep: the page, `entry`, a
    /// call, its views.
    const VIEWS_DEPTH: usize = 4;
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
        if !first && self.open.len() == Self::VIEWS_DEPTH && self.open.last() == Some(&true) {
            writer.write_all(b", ")
        } else {
            CompactFormatter.begin_array_value(writer, first)
        }
    }
}

/// The same request with `startIndex` moved, and without any access token.
pub fn page_link(path: &str, query: &str, start_index: u32) -> String {
    let mut pairs: Vec<(String, String)> = query::pairs(query)
        .into_iter()
        .filter(|(name, _)| name != "accessRequestToken")
        .collect();
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
