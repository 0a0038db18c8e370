//! The role of an account: what it is, and so what it may see (spec §1).

use std::fmt;
use std::str::FromStr;

/// What an account is, and so what it may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Global context: sees every call.
    Admin,
    /// An organization's own account: sees every call of its organization.
    Organization,
    /// Sees the calls that involve its own extensions.
    User,
    /// The telephony switch: reports calls, sees none.
    Switch,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Organization => "organization",
            Self::User => "user",
            Self::Switch => "switch",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "organization" => Ok(Self::Organization),
            "user" => Ok(Self::User),
            "switch" => Ok(Self::Switch),
            other => Err(format!(
                "unknown role {other:?}: expected admin, organization, user or switch"
            )),
        }
    }
}
