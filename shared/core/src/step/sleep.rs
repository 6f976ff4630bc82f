//! `step.sleep` / `step.sleep_until`: a durable timer.

use std::future::Future;
use std::time::Duration;

use super::{Change, Next, Step, Wake};
use crate::clock::duration_ms;
use crate::failure::StepError;
use crate::run::{StepKind, StepStatus};

enum Until {
    After(Duration),
    At(i64),
}

impl Step {
    /// Suspends the run for `duration`; survives restarts (a durable timer).
    pub fn sleep(
        &self,
        id: &str,
        duration: Duration,
    ) -> impl Future<Output = Result<(), StepError>> + Send + '_ {
        self.sleep_until_inner(id.to_owned(), Until::After(duration))
    }

    /// Suspends the run until `at_ms` (milliseconds since the Unix epoch).
    pub fn sleep_until(
        &self,
        id: &str,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), StepError>> + Send + '_ {
        self.sleep_until_inner(id.to_owned(), Until::At(at_ms))
    }

    async fn sleep_until_inner(&self, id: String, until: Until) -> Result<(), StepError> {
        self.step(&id, StepKind::Sleep, |claim, scope| async move {
            match claim.record {
                Some(rec) if rec.status == StepStatus::Completed => Next::Return(Ok(()), None),
                Some(mut rec) => {
                    let wake_at = rec.wake_at.unwrap_or(scope.now);
                    if scope.now < wake_at {
                        return Next::Suspend(None, Wake::at(wake_at));
                    }
                    rec.status = StepStatus::Completed;
                    rec.ended_at = Some(scope.now);
                    Next::Return(Ok(()), Some(Change::record(rec)))
                }
                None => {
                    let wake_at = match until {
                        Until::After(d) => scope.now.saturating_add(duration_ms(d)),
                        Until::At(at) => at,
                    };
                    let mut rec =
                        claim.new_record(StepKind::Sleep, StepStatus::Sleeping, scope.now);
                    rec.wake_at = Some(wake_at);
                    Next::Suspend(Some(Change::record(rec)), Wake::at(wake_at))
                }
            }
        })
        .await
    }
}
