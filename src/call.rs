//! A party's view of a call as the database stores it (`phone_call_views`), in one place: the
//! switch feed parses reports into it and writes it, the list reads it back and writes it as
//! the API's `phoneCallView` (`phone_calls::model`).

use chrono::{DateTime, Utc};

/// One party's view of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub id: String,
    pub extension: String,
    pub source: Vec<String>,
    pub destination: Vec<String>,
    pub flow: i16,
    pub status: i16,
    pub ringing: Option<DateTime<Utc>>,
    pub caller_id: Option<String>,
    pub recording: Option<DateTime<Utc>>,
    pub answered: Option<DateTime<Utc>>,
    pub parked: Option<DateTime<Utc>>,
    pub parked_pos: Option<i32>,
    pub parked_by: Option<String>,
    pub on_hold: Option<DateTime<Utc>>,
    pub holder: Option<i16>,
    pub disposition: Option<i16>,
}
