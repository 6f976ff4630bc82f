//! The web dashboard `hookflow dev` serves at `/`: functions with their
//! triggers and options, runs with a step waterfall, events with the runs
//! they started, dead letters, and the actions on them (cancel, replay,
//! rerun from a step, redrive, pause, send a test event).
//!
//! Server-rendered HTML (MiniJinja templates compiled into the binary) with
//! plain HTML forms for every action: nothing to build or download at run
//! time, every page works without JavaScript, and the same handlers the
//! JSON API uses decide what happens. A few lines of script only refresh a
//! page in place while something on it is still running. Admin access rules
//! (`crate::access`) apply to every page.

mod view;

use std::sync::LazyLock;
use std::time::Duration;

use axum::Form;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hookflow::store::{EventLog, RunStore};
use hookflow::{Error, Event, RunFilter, RunStatus};
use hookflow_embedded::Embedded;
use minijinja::{Environment, context};
use serde::Deserialize;

use crate::views::{event_runs, failed_runs};

/// Runs a list page shows at most.
const PAGE_RUNS: usize = 200;
/// Events the events page shows at most.
const PAGE_EVENTS: usize = 100;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("functions.html", include_str!("templates/functions.html")),
        ("runs.html", include_str!("templates/runs.html")),
        ("run.html", include_str!("templates/run.html")),
        ("events.html", include_str!("templates/events.html")),
        ("event.html", include_str!("templates/event.html")),
        (
            "dead_letters.html",
            include_str!("templates/dead_letters.html"),
        ),
        ("error.html", include_str!("templates/error.html")),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("dashboard template {name}: {e}"));
    }
    env.add_filter("time", view::time);
    env.add_filter("duration", view::duration);
    env.add_filter("truncate", view::truncate);
    // Ids in links: every reserved character encoded (`/`, `?`, `#` too).
    env.add_filter("seg", |id: String| crate::ops::url_encode(&id));
    env
});

/// A page that could not be shown: rendered as HTML with its status.
#[derive(Debug)]
pub struct PageError(StatusCode, String);

impl From<Error> for PageError {
    fn from(err: Error) -> Self {
        let api = crate::api::ApiError::from(err);
        Self(api.status(), api.message().to_owned())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = TEMPLATES.get_template("error.html").and_then(|t| {
            t.render(context! { status => self.0.as_u16(), reason => self.0.canonical_reason(), message => self.1 })
        });
        match page {
            Ok(html) => (self.0, Html(html)).into_response(),
            Err(e) => (self.0, format!("{}: {e}", self.1)).into_response(),
        }
    }
}

type Page = Result<Response, PageError>;

fn render(name: &str, ctx: minijinja::Value) -> Page {
    let html = TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| {
            tracing::error!(template = name, error = %e, "dashboard template failed");
            PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        })?;
    Ok(Html(html).into_response())
}

fn bad_request(message: impl Into<String>) -> PageError {
    PageError(StatusCode::BAD_REQUEST, message.into())
}

/// Where a form's action leads: back to a page (303, so a reload does not
/// post again).
fn see(location: &str) -> Page {
    Ok(Redirect::to(location).into_response())
}

/// The dashboard's routes, over any state the embedded runtime comes from.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Embedded: FromRef<S>,
{
    Router::new()
        .route("/", get(functions_page))
        .route("/ui/functions/{id}/pause", post(pause))
        .route("/ui/functions/{id}/resume", post(resume))
        .route("/ui/runs", get(runs_page))
        .route("/ui/runs/{id}", get(run_page))
        .route("/ui/runs/{id}/cancel", post(cancel))
        .route("/ui/runs/{id}/replay", post(replay))
        .route("/ui/runs/{id}/rerun", post(rerun))
        .route("/ui/events", get(events_page).post(send_event))
        .route("/ui/events/{id}", get(event_page))
        .route("/ui/dead-letters", get(dead_letters_page))
        .route("/ui/dead-letters/redrive", post(redrive))
}

async fn functions_page(State(rt): State<Embedded>) -> Page {
    let all_counts = rt.store().run_counts().await.map_err(Error::from)?;
    let mut functions = Vec::new();
    for f in rt.engine().registry().iter() {
        let mut counts: Vec<_> = all_counts
            .iter()
            .filter(|(function, _, _)| function == f.id())
            .collect();
        counts.sort_by_key(|(_, status, _)| RunStatus::ALL.iter().position(|s| s == status));
        let counts: Vec<_> = counts
            .into_iter()
            .map(|(_, status, n)| context! { status => status.as_str(), n => n })
            .collect();
        functions.push(context! {
            id => f.id(),
            triggers => f.triggers().iter().map(view::trigger).collect::<Vec<_>>(),
            retries => f.retry_count(),
            options => f.options_summary(),
            paused_since => rt.engine().paused_since(f.id()).await?,
            counts => counts,
        });
    }
    render(
        "functions.html",
        context! { page => "functions", functions => functions },
    )
}

async fn pause(State(rt): State<Embedded>, Path(id): Path<String>) -> Page {
    rt.engine().pause(&id).await?;
    see("/")
}

/// Form of the resume button.
#[derive(Debug, Deserialize)]
pub struct ResumeForm {
    /// Leave the events held while paused unstarted (`on` from a checkbox).
    #[serde(default)]
    pub skip: Option<String>,
}

async fn resume(
    State(rt): State<Embedded>,
    Path(id): Path<String>,
    Form(form): Form<ResumeForm>,
) -> Page {
    rt.engine().resume(&id, form.skip.is_some()).await?;
    see("/")
}

/// Query of the runs page: every field optional, empty means any.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    /// Only this function's runs.
    #[serde(default)]
    pub function: String,
    /// Only runs with this status.
    #[serde(default)]
    pub status: String,
    /// Only runs created since (an age like `2h`, or RFC 3339).
    #[serde(default)]
    pub since: String,
    /// Only runs created before (an age or RFC 3339).
    #[serde(default)]
    pub until: String,
    /// Only runs of this event (its id or its name).
    #[serde(default)]
    pub event: String,
}

async fn runs_page(State(rt): State<Embedded>, Query(q): Query<RunsQuery>) -> Page {
    let now = rt.engine().clock().now_ms();
    let time = |text: &str, what: &str| -> Result<Option<i64>, PageError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        crate::ops::parse_time(text, now)
            .map(Some)
            .map_err(|e| bad_request(format!("{what}: {e}")))
    };
    let status = match q.status.trim() {
        "" => None,
        s => Some(crate::views::parse_status(s).map_err(bad_request)?),
    };
    let filter = RunFilter {
        function_id: Some(q.function.trim().to_owned()).filter(|f| !f.is_empty()),
        status,
        limit: if q.event.trim().is_empty() {
            PAGE_RUNS
        } else {
            10 * PAGE_RUNS
        },
        since: time(&q.since, "since")?,
        until: time(&q.until, "until")?,
    };
    let event = q.event.trim();
    let runs: Vec<_> = rt
        .engine()
        .list_runs(&filter)
        .await?
        .into_iter()
        .filter(|r| event.is_empty() || r.event.id == event || r.event.name == event)
        .take(PAGE_RUNS)
        .collect();
    let live = runs.iter().any(|r| !r.status.is_terminal());
    let functions: Vec<&str> = rt.engine().registry().iter().map(|f| f.id()).collect();
    render(
        "runs.html",
        context! {
            page => "runs",
            runs => runs.iter().map(view::run_row).collect::<Vec<_>>(),
            live => live,
            functions => functions,
            statuses => RunStatus::ALL.map(RunStatus::as_str),
            q => context! { function => q.function, status => q.status, since => q.since,
                            until => q.until, event => q.event },
            limit => PAGE_RUNS,
        },
    )
}

async fn run_page(State(rt): State<Embedded>, Path(id): Path<String>) -> Page {
    let Some(view) = rt.engine().run_view(&id).await? else {
        // A replay's run is created by the router a moment after the
        // request: the page keeps looking for it.
        return Ok((
            StatusCode::NOT_FOUND,
            render(
                "run.html",
                context! { page => "runs", missing => id, live => true },
            )?,
        )
            .into_response());
    };
    let now = rt.engine().clock().now_ms();
    let replays: Vec<_> = rt
        .engine()
        .list_runs(&RunFilter {
            function_id: Some(view.run.function_id.clone()),
            limit: 1000,
            since: Some(view.run.created_at),
            ..RunFilter::default()
        })
        .await?
        .into_iter()
        .filter(|r| r.replay_of.as_deref() == Some(id.as_str()))
        .map(|r| view::run_row(&r))
        .collect();
    let live = !view.run.status.is_terminal();
    render(
        "run.html",
        context! {
            page => "runs",
            run => view::run_detail(&view.run),
            event => view::pretty(&serde_json::to_value(&view.run.event).unwrap_or_default()),
            waterfall => view::waterfall(&view, now),
            replays => replays,
            live => live,
        },
    )
}

/// Waits up to 3 s for a run the router is creating, so the page a
/// replay leads to shows it.
async fn created(rt: &Embedded, id: &str) -> Result<(), PageError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while rt.store().get_run(id).await?.is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn cancel(State(rt): State<Embedded>, Path(id): Path<String>) -> Page {
    crate::views::cancel(rt.engine(), &id, Duration::from_secs(3)).await?;
    see(&format!("/ui/runs/{}", crate::ops::url_encode(&id)))
}

async fn replay(State(rt): State<Embedded>, Path(id): Path<String>) -> Page {
    let new = rt.engine().replay(&id).await?;
    created(&rt, &new).await?;
    see(&format!("/ui/runs/{}", crate::ops::url_encode(&new)))
}

/// Form of a step's "rerun from here" button.
#[derive(Debug, Deserialize)]
pub struct RerunForm {
    /// The step to run again, with everything after it.
    pub from: String,
}

async fn rerun(
    State(rt): State<Embedded>,
    Path(id): Path<String>,
    Form(form): Form<RerunForm>,
) -> Page {
    let new = rt.engine().rerun_from(&id, &form.from).await?;
    created(&rt, &new).await?;
    see(&format!("/ui/runs/{}", crate::ops::url_encode(&new)))
}

/// Query of the events page.
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    /// Only events with this name.
    #[serde(default)]
    pub name: String,
}

async fn events_page(State(rt): State<Embedded>, Query(q): Query<EventsQuery>) -> Page {
    let name = Some(q.name.trim()).filter(|n| !n.is_empty());
    let events = rt.store().recent_events(name, PAGE_EVENTS).await?;
    let mut names: Vec<&str> = rt
        .engine()
        .registry()
        .iter()
        .flat_map(|f| f.triggers())
        .filter_map(|t| match t {
            hookflow::function::Trigger::Event { name, .. } => Some(name.as_str()),
            hookflow::function::Trigger::Cron { .. } => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    render(
        "events.html",
        context! {
            page => "events",
            events => events.iter().map(view::event_row).collect::<Vec<_>>(),
            names => names,
            name => q.name,
            limit => PAGE_EVENTS,
        },
    )
}

/// The "send test event" form.
#[derive(Debug, Deserialize)]
pub struct SendForm {
    /// Event name.
    pub name: String,
    /// Its data, a JSON object (empty: `{}`).
    #[serde(default)]
    pub data: String,
    /// Its id (empty: one is made up; the same id twice is a duplicate).
    #[serde(default)]
    pub id: String,
}

async fn send_event(State(rt): State<Embedded>, Form(form): Form<SendForm>) -> Page {
    let name = form.name.trim();
    if name.is_empty() {
        return Err(bad_request("an event needs a name"));
    }
    let data = match form.data.trim() {
        "" => serde_json::json!({}),
        text => {
            serde_json::from_str(text).map_err(|e| bad_request(format!("data is not JSON: {e}")))?
        }
    };
    let mut event = Event::new(name, data);
    if !form.id.trim().is_empty() {
        event.id = form.id.trim().to_owned();
    }
    let ingested = rt.engine().ingest(vec![event]).await?;
    let id = ingested
        .first()
        .map(|i| i.id.clone())
        .ok_or_else(|| PageError(StatusCode::INTERNAL_SERVER_ERROR, "nothing ingested".into()))?;
    see(&format!("/ui/events/{}", crate::ops::url_encode(&id)))
}

async fn event_page(State(rt): State<Embedded>, Path(id): Path<String>) -> Page {
    let stored = rt
        .store()
        .get_event(&id)
        .await?
        .ok_or_else(|| PageError(StatusCode::NOT_FOUND, format!("event `{id}` not found")))?;
    let runs = event_runs(rt.engine(), &stored).await?;
    let planned = hookflow::planned_runs(rt.engine().registry(), &stored.event, stored.received_at);
    // Runs the router has yet to create (or that an idempotency key or a
    // pause refused).
    let pending: Vec<_> = planned
        .iter()
        .filter(|p| !runs.iter().any(|r| r.id == p.run_id))
        .map(|p| context! { id => p.run_id, function_id => p.function_id })
        .collect();
    let live = !pending.is_empty() || runs.iter().any(|r| !r.status.is_terminal());
    render(
        "event.html",
        context! {
            page => "events",
            event => view::event_row(&stored),
            payload => view::pretty(&serde_json::to_value(&stored.event).unwrap_or_default()),
            runs => runs.iter().map(view::run_row).collect::<Vec<_>>(),
            pending => pending,
            live => live,
        },
    )
}

async fn dead_letters_page(State(rt): State<Embedded>) -> Page {
    let failed = failed_runs(rt.engine(), None).await?;
    let dead = rt.store().dead_letters().await.map_err(Error::from)?;
    let messages: Vec<_> = dead
        .iter()
        .map(|(delivery, error)| {
            context! {
                id => delivery.id,
                queue => delivery.envelope.target.queue_name(),
                message => view::pretty(&serde_json::to_value(&delivery.envelope.message).unwrap_or_default()),
                receive_count => delivery.receive_count,
                error => error,
            }
        })
        .collect();
    render(
        "dead_letters.html",
        context! {
            page => "dead-letters",
            failed => failed.iter().map(view::run_row).collect::<Vec<_>>(),
            messages => messages,
        },
    )
}

async fn redrive(State(rt): State<Embedded>) -> Page {
    crate::api::redrive_all(&rt, None).await?;
    see("/ui/dead-letters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_the_error_page_escapes() {
        let env = &*TEMPLATES;
        assert_eq!(env.templates().count(), 8);
        let html = env
            .get_template("error.html")
            .unwrap()
            .render(context! { status => 400, reason => "Bad Request", message => "<script>x</script>" })
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"),
            "{html}"
        );
    }
}
