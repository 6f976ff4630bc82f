//! Bulk actions: cancel or replay every run matching a filter (function,
//! status, creation time, and a CEL `if` over the trigger event), with a dry
//! run that only counts. Safe to interrupt and run again: a cancellation of
//! a finished run is skipped, and a run already replayed (by any replay: its
//! replay names it) is not replayed again; the replay's id is derived from
//! the run ([`Admin::redrive`]), so two bulk replays racing start one. Pin
//! `until` to when the operation began, so a repeat does not take in the
//! replays it made (the CLI does).

use serde::{Deserialize, Serialize};

use crate::admin::Admin;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::run::{Run, RunStatus};
use crate::store::{EventLog, FlowStore, Outbox, RunFilter, RunStore};

/// Most runs one bulk action reads (newest first); `more` says when the
/// filter matched past it (run the action again for the rest).
pub const MAX_BULK: usize = 10_000;

/// What to do to each matching run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Request its cancellation (unfinished runs only).
    Cancel,
    /// Replay it once (finished runs only).
    Replay,
}

/// Which runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkFilter {
    /// Only this function's runs.
    #[serde(default, rename = "function")]
    pub function_id: Option<String>,
    /// Only runs with this status.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// Created at or after (ms).
    #[serde(default)]
    pub since: Option<i64>,
    /// Created before (ms).
    #[serde(default)]
    pub until: Option<i64>,
    /// A CEL condition over the trigger `event` (`event.data.plan == 'pro'`).
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
}

/// What a bulk action did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOutcome {
    /// Runs matching the filter, newest first.
    pub matched: usize,
    /// Runs acted on, with the replay's id (none for a cancel or a dry run).
    pub acted: Vec<(String, Option<String>)>,
    /// Matching runs the action does not apply to (a finished run to
    /// cancel, an unfinished one to replay).
    pub skipped: usize,
    /// Matching runs a replay has already taken up (not replayed again).
    pub already_replayed: usize,
    /// The filter matched more than [`MAX_BULK`] runs: run it again.
    pub more: bool,
}

/// Whether `run`'s trigger event satisfies `condition` (the store already
/// chose the runs in the filter's function, status and time range).
fn holds(run: &Run, condition: Option<&Expr>) -> Result<bool> {
    match condition {
        None => Ok(true),
        Some(expr) => {
            let event = serde_json::to_value(&run.event)?;
            Ok(expr.matches(&[("event", &event)]))
        }
    }
}

impl<S: RunStore + EventLog + FlowStore + Outbox> Admin<S> {
    /// Applies `action` to every run `filter` matches, or with `dry_run`
    /// only counts them (`acted` then lists what would be done).
    ///
    /// # Errors
    /// A condition that does not compile ([`Error::Expression`]); storage
    /// errors (what was done before stays done: run it again).
    pub async fn bulk(
        &self,
        filter: &BulkFilter,
        action: BulkAction,
        dry_run: bool,
    ) -> Result<BulkOutcome> {
        let condition = filter.condition.as_deref().map(Expr::compile).transpose()?;
        let runs = self
            .list_runs(&RunFilter {
                function_id: filter.function_id.clone(),
                status: filter.status,
                limit: MAX_BULK + 1,
                since: filter.since,
                until: filter.until,
            })
            .await?;
        let mut outcome = BulkOutcome {
            more: runs.len() > MAX_BULK,
            ..BulkOutcome::default()
        };
        // Replays are newer than what they replay: among the runs read.
        let replayed: std::collections::HashSet<String> = if action == BulkAction::Replay {
            let mut all = self
                .list_runs(&RunFilter {
                    function_id: filter.function_id.clone(),
                    status: None,
                    limit: MAX_BULK,
                    since: filter.since,
                    until: None,
                })
                .await?;
            all.extend(runs.iter().cloned());
            all.into_iter().filter_map(|r| r.replay_of).collect()
        } else {
            std::collections::HashSet::new()
        };
        for run in runs.iter().take(MAX_BULK) {
            if !holds(run, condition.as_ref())? {
                continue;
            }
            outcome.matched += 1;
            let applies = match action {
                BulkAction::Cancel => !run.status.is_terminal(),
                BulkAction::Replay => run.status.is_terminal(),
            };
            if !applies {
                outcome.skipped += 1;
                continue;
            }
            if replayed.contains(&run.id) {
                outcome.already_replayed += 1;
                continue;
            }
            let done = match (action, dry_run) {
                (_, true) => None,
                (BulkAction::Replay, false) => Some(self.redrive(&run.id).await?),
                (BulkAction::Cancel, false) => match self.cancel(&run.id).await {
                    Ok(_) => None,
                    // Finished meanwhile.
                    Err(Error::Conflict(_)) => {
                        outcome.skipped += 1;
                        continue;
                    }
                    Err(err) => return Err(err),
                },
            };
            outcome.acted.push((run.id.clone(), done));
        }
        Ok(outcome)
    }
}
