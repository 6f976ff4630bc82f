//! Run ids: `{at:012x}-{tag}-{part}`, when the run's trigger came (in
//! milliseconds, so ids sort by it), a tag of its function (8 hex digits of
//! a hash of the function's id) and 16 hex digits, derived from what makes
//! the run unique (so a redelivered message makes the same id) or random.
//!
//! A store may key a run by these: DynamoDB keeps a function's runs in 16
//! partitions of their own (by the first digit of the last part), in time
//! order, so the id alone finds a run and a function's runs are listed
//! without an index. Ids of any other form (runs made before this format,
//! ids a test chose) are valid run ids too; [`RunIdParts::parse`] tells
//! them apart.

use sha2::{Digest, Sha256};

use crate::event::derived_id;

/// The width of the time part (milliseconds since the epoch, hex).
const TIME_DIGITS: usize = 12;
/// The width of the function tag.
const TAG_DIGITS: usize = 8;
/// The width of the last part.
const PART_DIGITS: usize = 16;
/// The length of a run id of this format.
pub const RUN_ID_LEN: usize = TIME_DIGITS + 1 + TAG_DIGITS + 1 + PART_DIGITS;

/// The tag of `function_id` in its runs' ids.
#[must_use]
pub fn function_tag(function_id: &str) -> String {
    hex::encode(&Sha256::digest(function_id.as_bytes())[..TAG_DIGITS / 2])
}

/// The time part of an id for `at` (a time before the epoch is the epoch).
#[must_use]
pub fn time_part(at: i64) -> String {
    format!("{:0width$x}", at.max(0), width = TIME_DIGITS)
}

/// An id of `function_id`'s run at `at` whose last part is `part` (at
/// least [`PART_DIGITS`] hex digits; the first of them are taken).
fn assemble(function_id: &str, at: i64, part: &str) -> String {
    format!(
        "{}-{}-{}",
        time_part(at),
        function_tag(function_id),
        &part[..PART_DIGITS]
    )
}

/// The id of a run of `function_id` whose trigger came at `at`, derived
/// from `parts` (with the function's id, by [`derived_id`]): the same
/// arguments always make the same id.
#[must_use]
pub fn derived_run_id(function_id: &str, at: i64, parts: &[&str]) -> String {
    let parts: Vec<&str> = std::iter::once(function_id)
        .chain(parts.iter().copied())
        .collect();
    assemble(function_id, at, &derived_id(&parts))
}

/// A new, unique id of a run of `function_id` started at `at`.
#[must_use]
pub fn fresh_run_id(function_id: &str, at: i64) -> String {
    assemble(function_id, at, &uuid::Uuid::new_v4().simple().to_string())
}

/// What a run id of this format says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunIdParts<'a> {
    /// When the run's trigger came (ms).
    pub at: i64,
    /// Its function's [`function_tag`].
    pub tag: &'a str,
    /// Which of the 16 shards of its function's runs it is in (a hex digit).
    pub shard: char,
}

impl<'a> RunIdParts<'a> {
    /// The parts of `id`, if it has this format (else it is an id of
    /// another form: older, or chosen by a test).
    #[must_use]
    pub fn parse(id: &'a str) -> Option<Self> {
        let bytes = id.as_bytes();
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        let (time, rest) = id.split_at_checked(TIME_DIGITS)?;
        if id.len() != RUN_ID_LEN
            || bytes[TIME_DIGITS] != b'-'
            || bytes[TIME_DIGITS + 1 + TAG_DIGITS] != b'-'
            || !bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == TIME_DIGITS || i == TIME_DIGITS + 1 + TAG_DIGITS || lower_hex(b))
        {
            return None;
        }
        let at = i64::from_str_radix(time, 16).ok()?;
        let tag = &rest[1..=TAG_DIGITS];
        let shard = char::from(bytes[TIME_DIGITS + TAG_DIGITS + 2]);
        Some(Self { at, tag, shard })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_id_is_stable_and_says_its_time_function_and_shard() {
        let id = derived_run_id("send-welcome", 1_700_000_000_123, &["evt-1"]);
        assert_eq!(
            id,
            derived_run_id("send-welcome", 1_700_000_000_123, &["evt-1"])
        );
        assert_eq!(id.len(), RUN_ID_LEN);
        let parts = RunIdParts::parse(&id).expect("the format");
        assert_eq!(parts.at, 1_700_000_000_123);
        assert_eq!(parts.tag, function_tag("send-welcome"));
        assert_eq!(parts.shard, id.chars().nth(22).unwrap());
        assert!(parts.shard.is_ascii_hexdigit());
    }

    #[test]
    fn ids_differ_by_every_part_and_sort_by_time() {
        let a = derived_run_id("f", 1_000, &["e"]);
        assert_ne!(a, derived_run_id("g", 1_000, &["e"]));
        assert_ne!(a, derived_run_id("f", 1_001, &["e"]));
        assert_ne!(a, derived_run_id("f", 1_000, &["e2"]));
        // Parts are length-prefixed: moving a boundary changes the id.
        assert_ne!(
            derived_run_id("f", 1, &["ab", ""]),
            derived_run_id("f", 1, &["a", "b"])
        );
        let later = fresh_run_id("f", 1_001);
        assert!(a < later, "{a} sorts before {later}");
        assert_ne!(fresh_run_id("f", 1_000), fresh_run_id("f", 1_000));
        assert_eq!(RunIdParts::parse(&later).unwrap().tag, function_tag("f"));
    }

    #[test]
    fn ids_of_other_forms_are_not_taken_for_this_one() {
        for other in [
            "r1",
            "run-x",
            // A derived id of before (32 hex digits) and a UUID.
            "0123456789abcdef0123456789abcdef",
            "01936f4e-8a1b-7c2d-9e3f-0123456789ab",
            // Upper case, a wrong separator, one digit short or long.
            "0000000003E8-a1b2c3d4-0123456789abcdef",
            "0000000003e8_a1b2c3d4-0123456789abcdef",
            "0000000003e8-a1b2c3d4-0123456789abcde",
            "0000000003e8-a1b2c3d4-0123456789abcdef0",
            "0000000003é-a1b2c3d4-0123456789abcdef",
        ] {
            assert_eq!(RunIdParts::parse(other), None, "{other}");
        }
        assert_eq!(
            RunIdParts::parse("0000000003e8-a1b2c3d4-f123456789abcdef"),
            Some(RunIdParts {
                at: 1_000,
                tag: "a1b2c3d4",
                shard: 'f'
            })
        );
    }

    #[test]
    fn a_time_before_the_epoch_is_the_epoch() {
        assert_eq!(
            RunIdParts::parse(&derived_run_id("f", -5, &[])).unwrap().at,
            0
        );
    }
}
