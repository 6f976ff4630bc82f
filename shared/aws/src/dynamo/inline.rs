//! A step's record kept on the run item (attribute `j{position}`), so that
//! its checkpoint is the run item's one conditional write: a finished step's,
//! and an unfinished one's (a sleep, a wait, a retry to come), which a later
//! checkpoint of the same step rewrites in place.
//!
//! A record that is too large (or too far down the journal) gets an item of
//! its own instead, and the run item's write that carries it removes the
//! step's attribute, so a run item never holds an older record than the
//! step's own item. Reading, a finished record wins over an unfinished one
//! (finished records never change again), and otherwise the run item's.
//!
//! The run item is billed by the started KB on every update, so these
//! records are written compactly: a JSON array of the record's fields in a
//! fixed order, without the position (the attribute's name holds it), the
//! end time as an offset from the start, and no trailing empty fields.
//! `["charge","run","completed",1,1798761600000,12,{"id":"ch_1"}]` is a
//! `run` step that completed on its first attempt 12 ms after it started.
//! Records written as JSON objects (before this encoding) still read back.
//! The order of the fields is part of the stored format: a new field goes
//! at the end, never between.

use serde_json::{Value, json};

use hookflow::run::{StepRecord, StepStatus};

use crate::error::Result;

/// A step's record up to this size is kept on the run item; larger ones get
/// their own item.
const INLINE_STEP_BYTES: usize = 2048;
/// Steps whose records may be kept on the run item (with the run's body and
/// outbox, at most 64 KiB each inline, the item stays far below 400 KB).
const INLINE_STEPS: u32 = 64;

/// The run item's attribute holding the record of the step at `position`.
pub(super) fn name(position: u32) -> String {
    format!("j{position}")
}

/// The position of the step whose record attribute `name` holds, if it is
/// one.
pub(super) fn position(name: &str) -> Option<u32> {
    name.strip_prefix('j')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}

/// A step's record, encoded, when it is small enough (and early enough in
/// the journal) to be kept on the run item.
pub(super) fn encode(step: &StepRecord) -> Result<Option<String>> {
    if !may_inline(step.position) {
        return Ok(None);
    }
    let mut fields = vec![
        json!(step.id),
        serde_json::to_value(step.kind)?,
        serde_json::to_value(step.status)?,
        json!(step.attempts),
        json!(step.started_at),
        json!(step.ended_at.map(|end| end - step.started_at)),
        step.output.clone().unwrap_or(Value::Null),
        json!(step.error),
        json!(step.wake_at),
        step.detail.clone().unwrap_or(Value::Null),
    ];
    while fields.last().is_some_and(Value::is_null) {
        fields.pop();
    }
    let text = Value::Array(fields).to_string();
    Ok((text.len() <= INLINE_STEP_BYTES).then_some(text))
}

/// Whether the record of the step at `position` may be kept on the run
/// item (when small enough).
pub(super) fn may_inline(position: u32) -> bool {
    position < INLINE_STEPS
}

/// Whether `status` is a step's last: its record is never written again.
pub(super) fn finished(status: StepStatus) -> bool {
    matches!(status, StepStatus::Completed | StepStatus::Failed)
}

/// The record of the step at `position` from its encoded form (or from a
/// JSON object, as records were written before).
pub(super) fn decode(position: u32, text: &str) -> Result<StepRecord> {
    let value: Value = serde_json::from_str(text)?;
    let Value::Array(fields) = value else {
        return Ok(serde_json::from_value(value)?);
    };
    let field = |i: usize| fields.get(i).cloned().unwrap_or(Value::Null);
    let started_at = field(4);
    let ended_at = match (field(5).as_i64(), started_at.as_i64()) {
        (Some(offset), Some(start)) => json!(start + offset),
        _ => Value::Null,
    };
    Ok(serde_json::from_value(json!({
        "id": field(0),
        "position": position,
        "kind": field(1),
        "status": field(2),
        "attempts": field(3),
        "started_at": started_at,
        "ended_at": ended_at,
        "output": field(6),
        "error": field(7),
        "wake_at": field(8),
        "detail": field(9),
    }))?)
}

#[cfg(test)]
mod tests {
    use hookflow::run::StepKind;

    use super::*;

    fn record(position: u32) -> StepRecord {
        StepRecord {
            id: "charge".into(),
            position,
            kind: StepKind::Run,
            status: StepStatus::Completed,
            attempts: 1,
            output: Some(json!({"id": "ch_1"})),
            error: None,
            started_at: 1_798_761_600_000,
            ended_at: Some(1_798_761_600_012),
            wake_at: None,
            detail: None,
        }
    }

    #[test]
    fn a_finished_record_reads_back_whole_from_its_compact_form() {
        let step = record(3);
        let text = encode(&step).unwrap().unwrap();
        assert_eq!(
            text,
            r#"["charge","run","completed",1,1798761600000,12,{"id":"ch_1"}]"#
        );
        assert_eq!(decode(3, &text).unwrap(), step);
        let failed = StepRecord {
            status: StepStatus::Failed,
            attempts: 4,
            output: None,
            error: Some("card declined".into()),
            detail: Some(json!({"event": "x"})),
            ..record(0)
        };
        let text = encode(&failed).unwrap().unwrap();
        assert_eq!(decode(0, &text).unwrap(), failed);
    }

    #[test]
    fn an_unfinished_record_is_kept_inline_too() {
        let waiting = StepRecord {
            kind: StepKind::WaitForEvent,
            status: StepStatus::Waiting,
            attempts: 0,
            output: None,
            ended_at: None,
            wake_at: Some(1_798_848_000_000),
            detail: Some(json!({"event": "discord/connected", "match": "data.userId"})),
            ..record(1)
        };
        let text = encode(&waiting).unwrap().unwrap();
        assert_eq!(decode(1, &text).unwrap(), waiting);
        assert!(!finished(waiting.status));
        assert!(finished(record(1).status));
    }

    #[test]
    fn late_or_large_records_get_their_own_item() {
        assert_eq!(encode(&record(INLINE_STEPS)).unwrap(), None);
        let large = StepRecord {
            output: Some(json!("x".repeat(INLINE_STEP_BYTES))),
            ..record(0)
        };
        assert_eq!(encode(&large).unwrap(), None);
    }

    #[test]
    fn records_written_as_objects_still_read_back() {
        let step = record(2);
        let object = serde_json::to_string(&step).unwrap();
        assert_eq!(decode(2, &object).unwrap(), step);
    }

    #[test]
    fn only_j_and_digits_name_a_record() {
        assert_eq!(position("j12"), Some(12));
        assert_eq!(position(&name(7)), Some(7));
        for other in ["j", "jx", "journal", "body", "j1a"] {
            assert_eq!(position(other), None, "{other}");
        }
    }
}
