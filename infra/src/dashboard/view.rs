//! What the dashboard's templates show, computed from runs, steps and
//! events: rows, a run's step waterfall, and the filters that format
//! times and durations.

use hookflow::function::Trigger;
use hookflow::run::{StepKind, StepStatus};
use hookflow::store::StoredEvent;
use hookflow::{Run, RunView};
use minijinja::{Value as View, context};
use serde_json::Value;

/// `ms` since the epoch as UTC `2026-12-01 23:14:45.123` (template filter).
pub fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        )
}

/// `ms` as `850 ms`, `12.3 s`, `4m 05s`, `3h 20m` or `2d 4h` (template filter).
pub fn duration(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".to_owned();
    };
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000),
        3_600_000..86_400_000 => format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
        _ => format!("{}d {}h", ms / 86_400_000, ms % 86_400_000 / 3_600_000),
    }
}

/// `text` cut to `chars` characters, with `…` when cut (template filter).
pub fn truncate(text: Option<String>, chars: usize) -> String {
    let text = text.unwrap_or_default();
    if text.chars().count() <= chars {
        return text;
    }
    let mut cut: String = text.chars().take(chars).collect();
    cut.push('…');
    cut
}

/// JSON indented for a `<pre>`.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A trigger in words.
pub fn trigger(t: &Trigger) -> String {
    match t {
        Trigger::Event {
            name,
            condition: Some(c),
        } => format!("{name} if {c}"),
        Trigger::Event {
            name,
            condition: None,
        } => name.clone(),
        Trigger::Cron {
            schedule,
            timezone,
            timezone_setting,
        } => {
            let zone = timezone_setting
                .as_deref()
                .map(|s| format!("${s}"))
                .unwrap_or_else(|| timezone.clone());
            format!("cron {schedule} ({zone})")
        }
    }
}

/// A run in a list.
pub fn run_row(run: &Run) -> View {
    let end = run.ended_at;
    context! {
        id => run.id,
        function_id => run.function_id,
        status => run.status.as_str(),
        terminal => run.status.is_terminal(),
        event_id => run.event.id,
        event_name => run.event.name,
        created_at => run.created_at,
        started_at => run.started_at,
        ended_at => end,
        took => end.map(|e| e - run.started_at.unwrap_or(run.created_at)),
        wake_at => run.wake_at,
        error => run.error,
        note => run.note,
        replay_of => run.replay_of,
    }
}

/// A run's header on its page.
pub fn run_detail(run: &Run) -> View {
    context! {
        ..run_row(run),
        ..context! {
            output => run.output.as_ref().map(pretty),
            attempt => run.attempt,
            not_before => run.not_before,
            cancel_requested => run.cancel_requested,
            cancel_on => run.cancel_on,
            idempotency_key => run.idempotency_key,
            parent => run.parent.as_ref().map(|p| p.run_id.clone()),
            batch => run.batch,
        }
    }
}

/// An event in a list.
pub fn event_row(stored: &StoredEvent) -> View {
    let data = serde_json::to_string(&stored.event.data).unwrap_or_default();
    let preview: String = data.chars().take(120).collect();
    context! {
        id => stored.event.id,
        name => stored.event.name,
        ts => stored.event.ts,
        received_at => stored.received_at,
        preview => preview,
        truncated => data.chars().count() > 120,
    }
}

/// The run's steps on one time axis: each bar's offset and width in
/// percent of the run's span (from its creation to its end, or now), with
/// sleeps and waits drawn as gaps, and the time queued before the first
/// start as its own row.
pub fn waterfall(view: &RunView, now: i64) -> View {
    let run = &view.run;
    let origin = run.created_at;
    let step_ends = view
        .steps
        .iter()
        .map(|s| s.ended_at.unwrap_or(now).max(s.started_at));
    let end = run
        .ended_at
        .unwrap_or(now)
        .max(step_ends.max().unwrap_or(origin))
        .max(origin + 1);
    let span = (end - origin) as f64;
    let place = |from: i64, to: i64| {
        let left = (from - origin) as f64 / span * 100.0;
        let width = ((to - from) as f64 / span * 100.0).max(0.4);
        (
            format!("{:.2}", left.clamp(0.0, 100.0)),
            format!("{:.2}", width.min(100.0 - left.clamp(0.0, 99.6))),
        )
    };
    let mut rows = Vec::new();
    if let Some(started) = run.started_at.filter(|s| *s > origin) {
        let (left, width) = place(origin, started);
        rows.push(context! {
            id => "(queued)", kind => "queued", status => "queued", gap => true,
            left => left, width => width, started_at => origin, took => started - origin,
        });
    }
    for step in &view.steps {
        let to = step.ended_at.unwrap_or(now).max(step.started_at);
        let (left, width) = place(step.started_at, to);
        let gap = matches!(
            step.kind,
            StepKind::Sleep | StepKind::WaitForEvent | StepKind::Invoke
        );
        let status = match step.status {
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Retrying => "retrying",
            StepStatus::Sleeping => "sleeping",
            StepStatus::Waiting => "waiting",
        };
        rows.push(context! {
            id => step.id,
            kind => serde_json::to_value(step.kind).ok().and_then(|v| v.as_str().map(str::to_owned)),
            status => status,
            gap => gap,
            open => step.ended_at.is_none(),
            left => left,
            width => width,
            started_at => step.started_at,
            ended_at => step.ended_at,
            took => to - step.started_at,
            wake_at => step.wake_at,
            attempts => step.attempts,
            output => step.output.as_ref().map(pretty),
            error => step.error,
            detail => step.detail.as_ref().map(pretty),
        });
    }
    context! { rows => rows, span => end - origin, origin => origin }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_largest_unit() {
        assert_eq!(duration(Some(850)), "850 ms");
        assert_eq!(duration(Some(12_340)), "12.3 s");
        assert_eq!(duration(Some(245_000)), "4m 05s");
        assert_eq!(duration(Some(3 * 3_600_000 + 20 * 60_000)), "3h 20m");
        assert_eq!(duration(Some(2 * 86_400_000 + 4 * 3_600_000)), "2d 4h");
        assert_eq!(duration(None), "-");
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00.000");
    }

    #[test]
    fn a_sleep_is_a_gap_between_two_steps_on_the_runs_time_axis() {
        let step = |id: &str, kind: &str, status: &str, from: i64, to: i64| {
            serde_json::from_value(serde_json::json!({
                "id": id, "position": 0, "kind": kind, "status": status, "attempts": 1,
                "output": null, "error": null, "started_at": from, "ended_at": to,
                "wake_at": null, "detail": null,
            }))
            .unwrap()
        };
        let mut run = Run::new("r".into(), "f", hookflow::Event::new("e", Value::Null), 0);
        run.started_at = Some(100);
        run.ended_at = Some(1_000);
        let view = RunView {
            run,
            steps: vec![
                step("charge", "run", "completed", 100, 200),
                step("wait", "sleep", "completed", 200, 900),
                step("email", "run", "completed", 900, 1_000),
            ],
        };
        let w = waterfall(&view, 5_000);
        let rows: Vec<Value> =
            serde_json::from_value(serde_json::to_value(w.get_attr("rows").unwrap()).unwrap())
                .unwrap();
        let bar = |i: usize| {
            (
                rows[i]["left"].as_str().unwrap().to_owned(),
                rows[i]["width"].as_str().unwrap().to_owned(),
                rows[i]["gap"].as_bool().unwrap(),
            )
        };
        assert_eq!(rows[0]["id"], "(queued)");
        assert_eq!(bar(0), ("0.00".into(), "10.00".into(), true));
        assert_eq!(bar(1), ("10.00".into(), "10.00".into(), false));
        assert_eq!(bar(2), ("20.00".into(), "70.00".into(), true));
        assert_eq!(bar(3), ("90.00".into(), "10.00".into(), false));
    }
}
