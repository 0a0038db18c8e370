//! The PhoneCalls resource of UAPI: `/uapi/phoneCalls/{userId}/{extension}[/{phoneCallId}]`.

pub mod routes;
