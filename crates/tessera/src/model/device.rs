//! Device authorization (RFC 8628): what a device's request is, its user code, and how a poll
//! is answered. A device asks for a code pair, shows the user code, and polls the token endpoint
//! while a person enters the code on another screen, signs in and allows (or denies) it.

use super::sign_in::Grant;

/// The alphabet of user codes (RFC 8628 §6.1): base-20 consonants, no vowels (no words), no
/// look-alike digits.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code: 20^8 ≈ 2^34.5 (§6.1 recommends 8 of this alphabet).
pub const USER_CODE_LENGTH: usize = 8;

/// What a device's polling adds to its interval when it polls too fast (RFC 8628 §3.5: "MUST be
/// increased by 5 seconds for this and all subsequent requests").
pub const SLOW_DOWN_STEP: i64 = 5;

/// Longest interval the slow-downs can reach.
pub const MAX_INTERVAL: i64 = 60;

/// Where a device's request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for a person to enter the code.
    Pending,
    /// A person allowed it; the next poll gets the tokens.
    Approved,
    /// A person denied it.
    Denied,
    /// The tokens were issued; the device code is spent.
    Issued,
}

impl DeviceStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Issued => "issued",
        }
    }

    /// The status a stored name names.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeviceStatus::Pending,
            "approved" => DeviceStatus::Approved,
            "denied" => DeviceStatus::Denied,
            "issued" => DeviceStatus::Issued,
            _ => return None,
        })
    }
}

/// A device authorization request, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// SHA-256 (hex) of the device code.
    pub id: String,
    /// SHA-256 (hex) of the user code, normalized ([`normalize_user_code`]).
    pub user_code: String,
    /// What it grants: the client, the scope and resources asked for; once approved, the
    /// person (`user_id`) and when they signed in (`auth_time`).
    pub grant: Grant,
    /// Where it stands.
    pub status: DeviceStatus,
    /// When it was asked for.
    pub created_at: i64,
    /// When the codes stop working.
    pub expires_at: i64,
    /// Seconds the device must wait between polls (grows with each `slow_down`).
    pub interval: i64,
    /// When the device last polled.
    pub last_polled_at: Option<i64>,
}

/// How a poll of the token endpoint with a device code is answered (RFC 8628 §3.5).
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// No such device code for this client.
    Unknown,
    /// Nobody has entered the code yet: `authorization_pending`.
    Pending,
    /// Polled sooner than the interval: `slow_down`; the interval is now this.
    SlowDown(i64),
    /// The codes expired: `expired_token`.
    Expired,
    /// The person denied it: `access_denied`.
    Denied,
    /// Tokens were issued for it already.
    Spent,
    /// Approved, but not what this poll may have now (the client changed since): nothing
    /// changed.
    Refused,
    /// Approved: the device code is spent now, and this is what it grants.
    Approved(Grant),
}

/// A user code as a person types it: letters of the alphabet in either case, with any dashes
/// and spaces between, or `None` when it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

/// A normalized user code as it is shown: `BCDF-GHJK`.
pub fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(USER_CODE_LENGTH / 2));
    format!("{a}-{b}")
}

/// A user code from `random` bytes (one per character, by rejection sampling so that every
/// letter is equally likely); `None` when the bytes ran out first.
pub fn user_code_from(random: &[u8]) -> Option<String> {
    // 240 = 12 × 20: bytes at or above it would favour the first letters.
    let code: String = random
        .iter()
        .filter(|b| **b < 240)
        .take(USER_CODE_LENGTH)
        .map(|b| USER_CODE_ALPHABET[usize::from(*b % 20)] as char)
        .collect();
    (code.len() == USER_CODE_LENGTH).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_read_as_people_type_them() {
        assert_eq!(normalize_user_code("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code("BCDFGHJK").as_deref(), Some("BCDFGHJK"));
        for bad in [
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-FGHJ",
            "BCDF-GHJ1",
            "",
            "BCDF_GHJK",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }

    #[test]
    fn user_codes_use_the_whole_alphabet_evenly() {
        assert_eq!(
            user_code_from(&[0, 1, 2, 19, 20, 239, 240, 255, 3, 4]).as_deref(),
            Some("BCDZBZFG")
        );
        assert_eq!(user_code_from(&[250; 16]), None);
        let mut seen = [0u32; 20];
        for b in 0..240u8 {
            let c = user_code_from(&[b; 8]).unwrap();
            let i = USER_CODE_ALPHABET
                .iter()
                .position(|x| *x == c.as_bytes()[0])
                .unwrap();
            seen[i] += 1;
        }
        assert!(seen.iter().all(|n| *n == 12), "{seen:?}");
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            DeviceStatus::Pending,
            DeviceStatus::Approved,
            DeviceStatus::Denied,
            DeviceStatus::Issued,
        ] {
            assert_eq!(DeviceStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeviceStatus::parse("other"), None);
    }
}
