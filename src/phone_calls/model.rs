//! The PhoneCall resource and the list envelope as JSON (spec §2.4, §2.5): nulls left out,
//! dates in UTC with `Z`, the `fields` projection, and `next`/`prev` links.

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::query::{self, Field, Fields, ListRequest};
use super::repo::{CallRow, Page};
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
    phone_call_view: Option<&'a RawValue>,
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
            phone_call_view: call.views.as_deref().filter(|_| want(Field::PhoneCallView)),
            links: want(Field::Links).then(|| Links {
                self_link: format!(
                    "/uapi/phoneCalls/{}/{}/{}",
                    call.owner_user_id, call.extension, call.id
                ),
            }),
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
