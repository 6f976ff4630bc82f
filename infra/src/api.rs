//! The HTTP API of `hookflow dev`: webhook endpoints for every provider, send
//! events, list and inspect runs with their step timeline, cancel and replay
//! runs, the document store (`docs_api`), and a health check.
//!
//! Errors are JSON `{"error": "..."}` with the status a client can act on:
//! 400 bad input, 404 unknown run, 409 conflicting state, 413 body too large,
//! 503 storage failure (retry).

use axum::Json;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookflow::{Error, Event, RunFilter};
use hookflow_embedded::Embedded;

use crate::access::AdminToken;
use hookflow_webhooks::{CertFetcher, Provider, Receiver, WebhookRequest};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest request body accepted by `POST /events` (a batch): 4 MiB.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// An API error.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    /// An error answered with `status` and `message`.
    #[must_use]
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, message.into())
    }
}

impl ApiError {
    /// Its HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.0
    }

    /// What went wrong, for people.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let status = match &err {
            Error::InvalidEvent(_) | Error::Expression { .. } | Error::InvalidFunction { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RunNotFound(_) | Error::UnknownFunction(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Json(_) | Error::Store(_) => {
                tracing::error!(error = %err, "request failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        Self(status, err.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// What the handlers share: the runtime and the webhook receiver.
pub struct AppState<F> {
    /// The engine and its store.
    pub runtime: Embedded,
    /// Verifies and normalizes provider deliveries.
    pub receiver: Arc<Receiver<F>>,
}

impl<F> Clone for AppState<F> {
    fn clone(&self) -> Self {
        Self {
            runtime: self.runtime.clone(),
            receiver: self.receiver.clone(),
        }
    }
}

impl<F> FromRef<AppState<F>> for Embedded {
    fn from_ref(state: &AppState<F>) -> Self {
        state.runtime.clone()
    }
}

/// The router, over a running embedded runtime and a webhook receiver.
pub fn router<F: CertFetcher + 'static>(runtime: Embedded, receiver: Arc<Receiver<F>>) -> Router {
    router_with_access(runtime, receiver, None)
}

/// [`router`] whose admin routes (all but the webhooks and `/health`) need
/// `token` when one is given (see [`crate::access`]).
pub fn router_with_access<F: CertFetcher + 'static>(
    runtime: Embedded,
    receiver: Arc<Receiver<F>>,
    token: Option<AdminToken>,
) -> Router {
    let open = Router::new()
        .route("/webhooks/{provider}", post(webhook::<F>))
        .route("/health", get(health))
        .merge(crate::access::sign_in_routes(token.clone()));
    let mut admin = admin_routes::<F>()
        .merge(crate::dashboard::routes())
        .route_layer(axum::middleware::from_fn(crate::access::same_origin));
    admin = match token {
        Some(token) => admin.route_layer(axum::middleware::from_fn_with_state(
            token,
            crate::access::require_token,
        )),
        None => admin.route_layer(axum::middleware::from_fn(crate::access::loopback_host)),
    };
    open.merge(admin)
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))
        .with_state(AppState { runtime, receiver })
}

fn admin_routes<F: CertFetcher + 'static>() -> Router<AppState<F>> {
    Router::new()
        .route("/events", post(post_events))
        .route("/functions", get(functions))
        .route("/functions/{id}/pause", post(pause_function))
        .route("/functions/{id}/resume", post(resume_function))
        .route("/runs", get(list_runs))
        .route("/events/{id}", get(get_event))
        .route("/runs/bulk", post(bulk_runs))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/cancel", post(cancel_run))
        .route("/runs/{id}/replay", post(replay_run))
        .route("/runs/{id}/rerun", post(rerun_run))
        .route("/dead-letters", get(dead_letters))
        .route("/dead-letters/redrive", post(redrive))
        .route("/docs", post(crate::docs_api::load))
        .route("/docs/{collection}", get(crate::docs_api::list))
        .route(
            "/docs/{collection}/{key}",
            get(crate::docs_api::get).put(crate::docs_api::put),
        )
}

/// `POST /webhooks/{provider}`: verify the signature on the raw body, store the
/// normalized event(s), answer as the provider expects (see `hookflow-webhooks`).
async fn webhook<F: CertFetcher + 'static>(
    State(state): State<AppState<F>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(provider) = Provider::from_path(&provider) else {
        return ApiError(
            StatusCode::NOT_FOUND,
            format!("no webhook endpoint for `{provider}`"),
        )
        .into_response();
    };
    let request = WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    let now = state.runtime.engine().clock().now_ms();
    let response = state
        .receiver
        .handle(provider, &request, &state.runtime.engine().ingest, now)
        .await;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(response.body)).into_response()
}

async fn health(State(rt): State<Embedded>) -> ApiResult<Json<Value>> {
    let depth = rt.store().depth().await.map_err(Error::from)?;
    let queued: u64 = depth.iter().map(|(_, n)| n).sum();
    let dead = rt.store().dead_letters().await.map_err(Error::from)?.len();
    let commits = rt.store().commit_stats();
    Ok(Json(json!({
        "status": "ok",
        "functions": rt.engine().registry().len(),
        "queued_messages": queued,
        "dead_letters": dead,
        "commits": {"fsynced": commits.durable_commits, "relaxed": commits.relaxed_commits, "writes": commits.jobs},
    })))
}

/// `POST /events`: one event object or an array of them. Returns each id,
/// whether it was a duplicate, and the runs it starts (their ids are derived,
/// so they are known at once; `run_ids` lists them all). A bad event rejects
/// the whole batch (nothing stored).
async fn post_events(
    State(rt): State<Embedded>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("body is not valid JSON: {e}"),
        )
    })?;
    let events: Vec<Event> = match value {
        Value::Array(items) => items.into_iter().map(serde_json::from_value).collect(),
        other => serde_json::from_value(other).map(|e| vec![e]),
    }
    .map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("not an event (name, data, id?, ts?): {e}"),
        )
    })?;
    if events.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "no events in the batch".into(),
        ));
    }
    let answer = crate::views::send(rt.engine(), events).await?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

async fn functions(State(rt): State<Embedded>) -> ApiResult<Json<Value>> {
    let mut list = Vec::new();
    for f in rt.engine().registry().iter() {
        let triggers: Vec<Value> = f
            .triggers()
            .iter()
            .map(|t| match t {
                hookflow::function::Trigger::Event { name, condition } => {
                    json!({"event": name, "if": condition})
                }
                hookflow::function::Trigger::Cron {
                    schedule,
                    timezone,
                    timezone_setting,
                } => {
                    json!({"cron": schedule, "timezone": timezone, "timezone_setting": timezone_setting})
                }
            })
            .collect();
        let paused_since = rt.engine().paused_since(f.id()).await?;
        list.push(json!({
            "id": f.id(), "triggers": triggers, "retries": f.retry_count(),
            "options": f.options_summary(), "paused_since": paused_since,
        }));
    }
    Ok(Json(json!({ "functions": list })))
}

async fn pause_function(
    State(rt): State<Embedded>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let since = rt.engine().pause(&id).await?;
    Ok(Json(json!({"function": id, "paused_since": since})))
}

/// Query of `POST /functions/{id}/resume`.
#[derive(Debug, Deserialize)]
pub struct ResumeQuery {
    /// Leave the events held while paused unstarted.
    #[serde(default)]
    pub skip: bool,
}

async fn resume_function(
    State(rt): State<Embedded>,
    Path(id): Path<String>,
    Query(q): Query<ResumeQuery>,
) -> ApiResult<Json<Value>> {
    let routed = rt.engine().resume(&id, q.skip).await?;
    Ok(Json(
        json!({"function": id, "paused_since": null, "held_events_routed": routed, "skipped": q.skip}),
    ))
}

/// Query of `GET /runs`.
#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    /// Only runs of this function.
    pub function: Option<String>,
    /// Only runs with this status.
    pub status: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

async fn list_runs(
    State(rt): State<Embedded>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<Value>> {
    let status = q
        .status
        .as_deref()
        .map(crate::views::parse_status)
        .transpose()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let filter = RunFilter {
        function_id: q.function,
        status,
        limit: q.limit.unwrap_or(100).min(1000),
        ..RunFilter::default()
    };
    let runs = rt.engine().list_runs(&filter).await?;
    let runs: Vec<Value> = runs.iter().map(crate::views::run_summary).collect();
    Ok(Json(json!({ "runs": runs })))
}

/// Query of `GET /runs/{id}`.
#[derive(Debug, Deserialize)]
pub struct RunQuery {
    /// Wait up to this long for the run to finish (`30s`, `500ms`, or
    /// seconds), answering as soon as it does: a long poll.
    pub wait: Option<String>,
}

/// Longest `?wait=` honoured.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn parse_wait(text: &str) -> Result<std::time::Duration, ApiError> {
    let bad = || {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("wait `{text}` is not a duration (30s, 500ms, or seconds)"),
        )
    };
    let millis: u64 = if let Some(ms) = text.strip_suffix("ms") {
        ms.trim().parse().map_err(|_| bad())?
    } else {
        let secs: f64 = text
            .strip_suffix('s')
            .unwrap_or(text)
            .trim()
            .parse()
            .map_err(|_| bad())?;
        if !(0.0..=3600.0).contains(&secs) {
            return Err(bad());
        }
        (secs * 1000.0) as u64
    };
    Ok(std::time::Duration::from_millis(millis).min(MAX_WAIT))
}

async fn get_run(
    State(rt): State<Embedded>,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
) -> ApiResult<Json<Value>> {
    if let Some(wait) = q.wait.as_deref().map(parse_wait).transpose()? {
        rt.store()
            .wait_for_end(&id, wait)
            .await
            .map_err(Error::from)?;
    }
    let view = rt
        .engine()
        .run_view(&id)
        .await?
        .ok_or_else(|| ApiError::from(Error::RunNotFound(id)))?;
    Ok(Json(serde_json::to_value(view).map_err(Error::from)?))
}

/// `POST /runs/{id}/cancel`: requests the cancellation and waits briefly for
/// the worker to apply it: `200` with the final status, or `202`
/// `cancelling` while a running step finishes.
async fn cancel_run(
    State(rt): State<Embedded>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (ended, run) =
        crate::views::cancel(rt.engine(), &id, std::time::Duration::from_secs(5)).await?;
    Ok(if ended {
        (
            StatusCode::OK,
            Json(json!({"id": run.id, "status": run.status})),
        )
    } else {
        (
            StatusCode::ACCEPTED,
            Json(json!({"id": run.id, "status": "cancelling"})),
        )
    })
}

async fn replay_run(
    State(rt): State<Embedded>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let run_id = rt.engine().replay(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": run_id, "replay_of": id})),
    ))
}

/// Query of `GET /dead-letters` and `POST /dead-letters/redrive`.
#[derive(Debug, Default, Deserialize)]
pub struct DeadLetterQuery {
    /// Only this function's failed runs.
    pub function: Option<String>,
}

/// `GET /events/{id}`: the stored event and the runs it started.
async fn get_event(State(rt): State<Embedded>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    crate::views::event(rt.engine(), &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("event `{id}` not found")))
}

/// Body of `POST /runs/bulk`: the filter, the action, and whether to only
/// count.
#[derive(Debug, Deserialize)]
pub struct BulkRequest {
    /// Which runs.
    #[serde(flatten)]
    pub filter: hookflow::BulkFilter,
    /// `cancel` or `replay`.
    pub action: hookflow::BulkAction,
    /// Only count (and list) what would be done.
    #[serde(default)]
    pub dry_run: bool,
}

async fn bulk_runs(
    State(rt): State<Embedded>,
    Json(request): Json<BulkRequest>,
) -> ApiResult<Json<Value>> {
    let outcome = rt
        .engine()
        .bulk(&request.filter, request.action, request.dry_run)
        .await?;
    Ok(Json(crate::views::bulk(&outcome, request.dry_run)))
}

/// Query of `POST /runs/{id}/rerun`.
#[derive(Debug, Deserialize)]
pub struct RerunQuery {
    /// The step to run again (with everything after it).
    pub from: String,
}

async fn rerun_run(
    State(rt): State<Embedded>,
    Path(id): Path<String>,
    Query(q): Query<RerunQuery>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let run_id = rt.engine().rerun_from(&id, &q.from).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": run_id, "replay_of": id, "from_step": q.from})),
    ))
}

async fn dead_letters(
    State(rt): State<Embedded>,
    Query(q): Query<DeadLetterQuery>,
) -> ApiResult<Json<Value>> {
    let failed: Vec<Value> = crate::views::failed_runs(rt.engine(), q.function.as_deref())
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "function_id": r.function_id, "event_id": r.event.id,
                "event_name": r.event.name, "ended_at": r.ended_at, "error": r.error,
                "replay_of": r.replay_of,
            })
        })
        .collect();
    let dead = rt.store().dead_letters().await.map_err(Error::from)?;
    let list: Vec<Value> = dead
        .into_iter()
        .map(|(delivery, error)| {
            json!({
                "id": delivery.id,
                "queue": delivery.envelope.target.queue_name(),
                "message": delivery.envelope.message,
                "receive_count": delivery.receive_count,
                "error": error,
            })
        })
        .collect();
    let count = list.len();
    Ok(Json(
        json!({ "dead_letters": list, "dead_letter_count": count, "failed_runs": failed }),
    ))
}

/// `POST /dead-letters/redrive`: puts every dead-lettered message back on
/// its queue and replays every failed run not yet replayed (only
/// `function`'s, if given; then no message is redriven). Safe to repeat:
/// a run's redrive has an id derived from it, so asking twice starts one
/// replay, and a replayed run leaves the view.
async fn redrive(
    State(rt): State<Embedded>,
    Query(q): Query<DeadLetterQuery>,
) -> ApiResult<Json<Value>> {
    let (n, replayed) = redrive_all(&rt, q.function.as_deref()).await?;
    Ok(Json(json!({ "redriven": n, "replayed": replayed })))
}

/// Puts every dead-lettered message back on its queue (unless `function`
/// is given) and replays every failed run not yet replayed (only
/// `function`'s, if given). Returns the messages redriven and each
/// `{"id", "replay_of"}`.
pub(crate) async fn redrive_all(
    rt: &Embedded,
    function: Option<&str>,
) -> hookflow::Result<(usize, Vec<Value>)> {
    let now = rt.engine().clock().now_ms();
    let n = if function.is_some() {
        0
    } else {
        rt.store().redrive(now).await.map_err(Error::from)?
    };
    let failed = crate::views::failed_runs(rt.engine(), function).await?;
    Ok((n, crate::views::replay_each(rt.engine(), &failed).await?))
}
