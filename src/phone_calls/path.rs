//! The path of the list, `/uapi/phoneCalls/{userId}/{extension}[/{phoneCallId}][/]`, parsed
//! into typed values (spec §2.2). Only the shape is checked here; whether the user and the
//! extension exist and may be seen is decided against the database in `repo`.

use uuid::Uuid;

use super::query::ParamError;

/// Whose calls: the `userId` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserRef {
    /// `@me` or `@viewer`: the authenticated account.
    Me,
    /// `@owner`: the owner of the extension (with `@self`: everything the caller may see).
    Owner,
    /// A numeric user id.
    Id(i64),
}

/// Which extensions: the `extension` segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExtensionRef {
    /// `@self`: all extensions of the user.
    All,
    /// A full number such as `0003*210`.
    Full(String),
    /// A short number such as `210`, resolved in the user's organization.
    Short(String),
}

/// The `phoneCallId` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRef {
    /// No id: every call in scope.
    Any,
    /// A well-formed id.
    Id(Uuid),
    /// Malformed: no call can have it, so the answer is an empty page.
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPath {
    pub user: UserRef,
    pub extension: ExtensionRef,
    pub call: CallRef,
}

/// Parses what follows `/uapi/phoneCalls/`. `None` means no such route (too many segments).
pub fn parse(tail: &str) -> Option<Result<ListPath, ParamError>> {
    let tail = tail.strip_suffix('/').unwrap_or(tail);
    let segments: Vec<&str> = if tail.is_empty() {
        Vec::new()
    } else {
        tail.split('/').collect()
    };
    if segments.len() > 3 {
        return None;
    }
    Some(parse_segments(&segments))
}

fn parse_segments(segments: &[&str]) -> Result<ListPath, ParamError> {
    let user = match segments.first().copied() {
        Some("@me" | "@viewer") => UserRef::Me,
        Some("@owner") => UserRef::Owner,
        Some(id) if is_id(id) => UserRef::Id(id.parse().map_err(|_| ParamError::User)?),
        _ => return Err(ParamError::User),
    };
    let extension = match segments.get(1).copied() {
        Some("@self") => ExtensionRef::All,
        Some(number) if is_short(number) => ExtensionRef::Short(number.to_string()),
        Some(number) if is_full(number) => ExtensionRef::Full(number.to_string()),
        _ => return Err(ParamError::Extension),
    };
    let call = match segments.get(2).copied() {
        None => CallRef::Any,
        Some(raw) => match Uuid::try_parse(raw) {
            Ok(id) if raw.len() == 36 => CallRef::Id(id),
            _ => CallRef::Malformed,
        },
    };
    Ok(ListPath {
        user,
        extension,
        call,
    })
}

/// A positive decimal id without sign or leading zeros.
fn is_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 18
        && !raw.starts_with('0')
        && raw.bytes().all(|b| b.is_ascii_digit())
}

fn is_short(raw: &str) -> bool {
    (3..=5).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit())
}

fn is_full(raw: &str) -> bool {
    raw.split_once('*').is_some_and(|(code, short)| {
        code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) && is_short(short)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(tail: &str) -> ListPath {
        parse(tail).unwrap().unwrap()
    }

    #[test]
    fn every_documented_form_parses() {
        assert_eq!(
            ok("@me/@self"),
            ListPath {
                user: UserRef::Me,
                extension: ExtensionRef::All,
                call: CallRef::Any
            }
        );
        assert_eq!(ok("@viewer/@self/").user, UserRef::Me);
        assert_eq!(
            ok("@owner/0003*210").extension,
            ExtensionRef::Full("0003*210".into())
        );
        assert_eq!(ok("12/210/").extension, ExtensionRef::Short("210".into()));
        assert_eq!(ok("12/210").user, UserRef::Id(12));
        let id = Uuid::new_v4();
        assert_eq!(ok(&format!("@me/@self/{id}")).call, CallRef::Id(id));
        assert_eq!(ok(&format!("@me/@self/{id}/")).call, CallRef::Id(id));
        assert_eq!(
            ok("@me/@self/b817d2618fe6f1804db1").call,
            CallRef::Malformed
        );
    }

    #[test]
    fn malformed_users_and_extensions_get_their_codes() {
        for tail in [
            "",
            "/",
            "me/@self",
            "@ME/@self",
            "0/@self",
            "012/@self",
            "-1/@self",
            "1.5/@self",
            "99999999999999999999/@self",
            "@me@self",
        ] {
            assert_eq!(parse(tail), Some(Err(ParamError::User)), "{tail:?}");
        }
        for tail in [
            "@me",
            "@me/",
            "@me/self",
            "@me/21",
            "@me/210000",
            "@me/003*210",
            "@me/0003*21",
            "@me/0003-210",
            "@me/0003*210*1",
            "@me/@SELF",
        ] {
            assert_eq!(parse(tail), Some(Err(ParamError::Extension)), "{tail:?}");
        }
    }

    #[test]
    fn extra_segments_are_no_route() {
        assert_eq!(parse("@me/@self/x/y"), None);
    }
}
