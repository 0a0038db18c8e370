//! The query string of the list, parsed into a `ListRequest` of typed values (spec §2.3). Once
//! built it cannot be invalid; the repository takes only this type. Nothing here touches the
//! database, so every 400 of this module is answered without a round trip.

use chrono::{DateTime, Utc};

use crate::time::parse_xs_datetime;

/// Largest page.
pub const MAX_COUNT: u32 = 5000;
/// Largest start index.
pub const MAX_START_INDEX: u32 = 5000;
/// Longest filter value, and longest item of an inArray list, in characters.
pub const MAX_VALUE_CHARS: usize = 256;
/// Most items of an inArray list.
pub const MAX_IN_ARRAY: usize = 100;

/// A 400 of the list, each with its UAPI code and the seed page's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    User,
    Extension,
    Count,
    StartIndex,
    FilterBy,
    FilterOp,
    FilterValue,
    SortBy,
    SortOrder,
    UpdatedSince,
    Fields,
}

impl ParamError {
    pub fn code(self) -> &'static str {
        match self {
            Self::User => "user_invalid",
            Self::Extension => "extension_invalid",
            Self::Count => "count_invalid",
            Self::StartIndex => "startindex_invalid",
            Self::FilterBy => "filterby_invalid",
            Self::FilterOp => "filterop_invalid",
            Self::FilterValue => "filtervalue_invalid",
            Self::SortBy => "sortby_invalid",
            Self::SortOrder => "sortorder_invalid",
            Self::UpdatedSince => "updatedsince_invalid",
            Self::Fields => "fields_invalid",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::User => "Value supplied in userId from the URI fragment is missing or invalid. The parameter must be set to @me, @viewer, @owner or the numeric id of a User you may access.",
            Self::Extension => "Value supplied in extension from the URI fragment is missing or invalid. The parameter must be set to @self or to the number of an Extension of the User, such as 0003*210 or 210.",
            Self::Count => "Value supplied in count parameter is missing or invalid. The parameter must be set to a numeric value between 1 and 5000.",
            Self::StartIndex => "Value supplied in startIndex parameter is missing or invalid. The parameter must be set to a numeric value, higher or equal with 0 and lower or equal with 5000.",
            Self::FilterBy => "Value supplied in filterBy parameter is missing or invalid. The parameter must be set to the name of a filterable PhoneCall field: id, extension, ownerId, published, answered, source, destination, callerId, status or flow.",
            Self::FilterOp => "Value supplied in filterOp parameter is missing or invalid. The parameter must be set to one of the values: contains, equals, startsWith, present, greaterThan, lessThan or inArray, and be supported by the filterBy field.",
            Self::FilterValue => "Value supplied in filterValue parameter is missing or invalid. The parameter must be set to a value of the filterBy field's type, of at most 256 characters without control characters (for inArray, a comma-separated list of at most 100 such values).",
            Self::SortBy => "Value supplied in sortBy parameter is missing or invalid. The parameter must be set to one of the values: published, answered, id or extension.",
            Self::SortOrder => "Value supplied in sortOrder parameter is missing or invalid. The parameter must be set to one of the values: ascending or descending.",
            Self::UpdatedSince => "Value supplied in updatedSince parameter is missing or invalid. The parameter must be set to a date with a timezone, such as 2026-11-28T14:40:28Z.",
            Self::Fields => "Value supplied in fields parameter is missing or invalid. The parameter must be set to a value consisting of the names of PhoneCall fields separated by a comma (e.g. extension,id,answered).",
        }
    }
}

/// A filterable field of the PhoneCall resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterField {
    Id,
    Extension,
    OwnerId,
    Published,
    Answered,
    Source,
    Destination,
    CallerId,
    Status,
    Flow,
}

/// The type of a filterable field, which decides its operators and how values parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Date,
    Integer,
}

impl FilterField {
    pub const ALL: [FilterField; 10] = [
        Self::Id,
        Self::Extension,
        Self::OwnerId,
        Self::Published,
        Self::Answered,
        Self::Source,
        Self::Destination,
        Self::CallerId,
        Self::Status,
        Self::Flow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Extension => "extension",
            Self::OwnerId => "ownerId",
            Self::Published => "published",
            Self::Answered => "answered",
            Self::Source => "source",
            Self::Destination => "destination",
            Self::CallerId => "callerId",
            Self::Status => "status",
            Self::Flow => "flow",
        }
    }

    pub fn field_type(self) -> FieldType {
        match self {
            Self::Id | Self::Extension | Self::Source | Self::Destination | Self::CallerId => {
                FieldType::Text
            }
            Self::Published | Self::Answered => FieldType::Date,
            Self::OwnerId | Self::Status | Self::Flow => FieldType::Integer,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    Contains,
    Equals,
    StartsWith,
    Present,
    GreaterThan,
    LessThan,
    InArray,
}

impl FilterOp {
    pub const ALL: [FilterOp; 7] = [
        Self::Contains,
        Self::Equals,
        Self::StartsWith,
        Self::Present,
        Self::GreaterThan,
        Self::LessThan,
        Self::InArray,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Contains => "contains",
            Self::Equals => "equals",
            Self::StartsWith => "startsWith",
            Self::Present => "present",
            Self::GreaterThan => "greaterThan",
            Self::LessThan => "lessThan",
            Self::InArray => "inArray",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Whether the operator applies to a field of this type.
    pub fn supports(self, field_type: FieldType) -> bool {
        field_type != FieldType::Integer || !matches!(self, Self::Contains | Self::StartsWith)
    }
}

/// A filter value, typed by the field and the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    /// `present`: no value.
    None,
    /// Text, or the UTC text of a date for contains and startsWith.
    Text(String),
    TextList(Vec<String>),
    Date(DateTime<Utc>),
    DateList(Vec<DateTime<Utc>>),
    Integer(i64),
    IntegerList(Vec<i64>),
}

/// `filterBy`, `filterOp` and `filterValue` together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: FilterField,
    pub op: FilterOp,
    pub value: FilterValue,
}

/// A sortable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortBy {
    Published,
    Answered,
    Id,
    Extension,
}

impl SortBy {
    pub const ALL: [SortBy; 4] = [Self::Published, Self::Answered, Self::Id, Self::Extension];

    pub fn name(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Answered => "answered",
            Self::Id => "id",
            Self::Extension => "extension",
        }
    }
}

/// A top-level field of the PhoneCall resource, for the `fields` projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    Extension,
    OwnerId,
    OwnerName,
    Published,
    Answered,
    Nonce,
    PhoneCallView,
    Links,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Self::Id,
        Self::Extension,
        Self::OwnerId,
        Self::OwnerName,
        Self::Published,
        Self::Answered,
        Self::Nonce,
        Self::PhoneCallView,
        Self::Links,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Extension => "extension",
            Self::OwnerId => "ownerId",
            Self::OwnerName => "ownerName",
            Self::Published => "published",
            Self::Answered => "answered",
            Self::Nonce => "nonce",
            Self::PhoneCallView => "phoneCallView",
            Self::Links => "links",
        }
    }
}

/// The fields a response carries (`id` is always among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields(u16);

impl Fields {
    pub fn all() -> Self {
        Self(u16::MAX)
    }

    pub fn contains(self, field: Field) -> bool {
        field == Field::Id || self.0 & (1 << field as u16) != 0
    }

    fn with(self, field: Field) -> Self {
        Self(self.0 | (1 << field as u16))
    }
}

/// A validated list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub count: u32,
    pub start_index: u32,
    pub filter: Option<Filter>,
    pub sort_by: SortBy,
    pub descending: bool,
    pub updated_since: Option<DateTime<Utc>>,
    pub fields: Fields,
}

impl Default for ListRequest {
    fn default() -> Self {
        Self {
            count: 20,
            start_index: 0,
            filter: None,
            sort_by: SortBy::Published,
            descending: false,
            updated_since: None,
            fields: Fields::all(),
        }
    }
}

/// The raw query string as name/value pairs, decoded.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).unwrap_or_default()
}

/// Parses a query string. Parameters are checked in the order of the spec's table, and the
/// first failure answers. Unknown parameters are ignored; a known one given twice is invalid.
pub fn parse(query: &str) -> Result<ListRequest, ParamError> {
    let pairs = pairs(query);
    let single = |name: &str, error: ParamError| -> Result<Option<&str>, ParamError> {
        let mut values = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (_, Some(_)) => Err(error),
            (value, None) => Ok(value),
        }
    };
    let mut request = ListRequest::default();

    if let Some(raw) = single("count", ParamError::Count)? {
        request.count = number(raw, 1, MAX_COUNT).ok_or(ParamError::Count)?;
    }
    if let Some(raw) = single("startIndex", ParamError::StartIndex)? {
        request.start_index = number(raw, 0, MAX_START_INDEX).ok_or(ParamError::StartIndex)?;
    }

    // Each filter parameter is checked at its own step: a repeated filterValue must not answer
    // before a bad filterBy or filterOp does.
    let filter_by = single("filterBy", ParamError::FilterBy)?;
    let given = |name: &str| pairs.iter().any(|(n, _)| n == name);
    request.filter = match filter_by {
        None if given("filterOp") || given("filterValue") => return Err(ParamError::FilterBy),
        None => None,
        Some(name) => {
            let field = FilterField::parse(name).ok_or(ParamError::FilterBy)?;
            let field_type = field.field_type();
            let op = match single("filterOp", ParamError::FilterOp)? {
                None if field_type == FieldType::Integer => FilterOp::Equals,
                None => FilterOp::Contains,
                Some(name) => FilterOp::parse(name).ok_or(ParamError::FilterOp)?,
            };
            if !op.supports(field_type) {
                return Err(ParamError::FilterOp);
            }
            let raw_value = single("filterValue", ParamError::FilterValue)?;
            let value =
                filter_value_of(field_type, op, raw_value).ok_or(ParamError::FilterValue)?;
            Some(Filter { field, op, value })
        }
    };

    if let Some(raw) = single("sortBy", ParamError::SortBy)? {
        request.sort_by = SortBy::ALL
            .into_iter()
            .find(|s| s.name() == raw)
            .ok_or(ParamError::SortBy)?;
    }
    if let Some(raw) = single("sortOrder", ParamError::SortOrder)? {
        request.descending = match raw {
            "ascending" => false,
            "descending" => true,
            _ => return Err(ParamError::SortOrder),
        };
    }
    if let Some(raw) = single("updatedSince", ParamError::UpdatedSince)? {
        request.updated_since = Some(parse_xs_datetime(raw).ok_or(ParamError::UpdatedSince)?);
    }
    if let Some(raw) = single("fields", ParamError::Fields)? {
        let mut fields = Fields(0);
        for name in raw.split(',') {
            let field = Field::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or(ParamError::Fields)?;
            fields = fields.with(field);
        }
        request.fields = fields;
    }
    Ok(request)
}

/// A decimal number in `min..=max`: digits only (no sign, space or fraction).
fn number(raw: &str, min: u32, max: u32) -> Option<u32> {
    if raw.is_empty() || raw.len() > 10 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<u32>().ok().filter(|n| (min..=max).contains(n))
}

fn clean_text(raw: &str) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.chars().count() <= MAX_VALUE_CHARS
        && !raw.chars().any(char::is_control);
    ok.then(|| raw.to_string())
}

fn filter_value_of(field_type: FieldType, op: FilterOp, raw: Option<&str>) -> Option<FilterValue> {
    if op == FilterOp::Present {
        return Some(FilterValue::None);
    }
    let raw = raw?;
    if op == FilterOp::InArray {
        let items: Vec<&str> = raw.split(',').collect();
        if items.len() > MAX_IN_ARRAY {
            return None;
        }
        return match field_type {
            FieldType::Text => items
                .into_iter()
                .map(clean_text)
                .collect::<Option<_>>()
                .map(FilterValue::TextList),
            FieldType::Date => items
                .into_iter()
                .map(parse_xs_datetime)
                .collect::<Option<_>>()
                .map(FilterValue::DateList),
            FieldType::Integer => items
                .into_iter()
                .map(integer)
                .collect::<Option<_>>()
                .map(FilterValue::IntegerList),
        };
    }
    match (field_type, op) {
        (FieldType::Integer, _) => integer(raw).map(FilterValue::Integer),
        (FieldType::Date, FilterOp::Equals | FilterOp::GreaterThan | FilterOp::LessThan) => {
            parse_xs_datetime(raw).map(FilterValue::Date)
        }
        _ => clean_text(raw).map(FilterValue::Text),
    }
}

/// An integer filter value: optional minus sign and up to 18 digits.
fn integer(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> ParamError {
        parse(q).unwrap_err()
    }

    #[test]
    fn defaults_apply_to_an_empty_query() {
        assert_eq!(parse("").unwrap(), ListRequest::default());
        assert_eq!(
            parse("accessRequestToken=Bearer%20x&unknown=1").unwrap(),
            ListRequest::default()
        );
    }

    #[test]
    fn a_full_query_parses_into_typed_values() {
        let r = parse("count=100&startIndex=200&filterBy=destination&filterOp=startsWith&filterValue=%2B4420&sortBy=extension&sortOrder=descending&updatedSince=2026-11-28T14:40:28Z&fields=extension,answered").unwrap();
        assert_eq!(
            (r.count, r.start_index, r.sort_by, r.descending),
            (100, 200, SortBy::Extension, true)
        );
        assert_eq!(
            r.filter,
            Some(Filter {
                field: FilterField::Destination,
                op: FilterOp::StartsWith,
                value: FilterValue::Text("+4420".into())
            })
        );
        assert!(r.fields.contains(Field::Extension) && r.fields.contains(Field::Id));
        assert!(!r.fields.contains(Field::PhoneCallView));
    }

    #[test]
    fn default_operators_depend_on_the_field_type() {
        let r = parse("filterBy=status&filterValue=3").unwrap();
        assert_eq!(r.filter.unwrap().op, FilterOp::Equals);
        let r = parse("filterBy=callerId&filterValue=Bob").unwrap();
        assert_eq!(r.filter.unwrap().op, FilterOp::Contains);
    }

    #[test]
    fn the_first_failing_parameter_in_table_order_answers() {
        assert_eq!(err("fields=nope&count=0"), ParamError::Count);
        assert_eq!(err("sortBy=x&startIndex=-1"), ParamError::StartIndex);
        assert_eq!(err("filterOp=equals"), ParamError::FilterBy);
        assert_eq!(err("filterValue=x"), ParamError::FilterBy);
        assert_eq!(
            err("filterBy=status&filterOp=contains&filterValue=1"),
            ParamError::FilterOp
        );
        assert_eq!(
            err("filterBy=ownerId&filterValue=abc"),
            ParamError::FilterValue
        );
        assert_eq!(
            err("filterBy=published&filterOp=equals&filterValue=2024-02-30T00:00:00Z"),
            ParamError::FilterValue
        );
        assert_eq!(err("filterBy=id&filterOp=equals"), ParamError::FilterValue);
        assert_eq!(err("count=1&count=2"), ParamError::Count);
        assert_eq!(
            err("filterBy=nope&filterOp=equals&filterOp=equals"),
            ParamError::FilterBy
        );
        assert_eq!(
            err("filterBy=status&filterOp=contains&filterValue=1&filterValue=2"),
            ParamError::FilterOp
        );
        assert_eq!(
            err("filterBy=status&filterValue=1&filterValue=2"),
            ParamError::FilterValue
        );
        assert_eq!(err("updatedSince=2026-11-28"), ParamError::UpdatedSince);
        assert_eq!(err("fields=id,,extension"), ParamError::Fields);
        assert_eq!(err("sortOrder=DESC"), ParamError::SortOrder);
    }

    #[test]
    fn present_ignores_the_value_and_in_array_takes_lists() {
        let r = parse("filterBy=answered&filterOp=present&filterValue=%00").unwrap();
        assert_eq!(r.filter.unwrap().value, FilterValue::None);
        let r = parse("filterBy=flow&filterOp=inArray&filterValue=2,8").unwrap();
        assert_eq!(
            r.filter.unwrap().value,
            FilterValue::IntegerList(vec![2, 8])
        );
        let many = vec!["1"; 101].join(",");
        assert_eq!(
            err(&format!(
                "filterBy=status&filterOp=inArray&filterValue={many}"
            )),
            ParamError::FilterValue
        );
    }
}
