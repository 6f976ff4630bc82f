//! The operator commands: `hookflow runs|events|cancel|replay|dlq`, against a
//! running `hookflow dev` (`--dev URL`, default `http://127.0.0.1:8288`, with
//! `HOOKFLOW_ADMIN_TOKEN` when it listens beyond loopback). Human tables by
//! default, `--json` for scripts; bulk actions count first (a dry run) and
//! ask before acting unless `--yes`.
//!
//! Every command renders its output as a string ([`execute`]) so tests read
//! exactly what a user sees.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, bail};
use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::access::ADMIN_TOKEN_VAR;

/// Where the commands go, and how they answer.
#[derive(Clone, clap::Args)]
pub struct Target {
    /// The `hookflow dev` to talk to.
    #[arg(
        long = "dev",
        env = "HOOKFLOW_URL",
        default_value = "http://127.0.0.1:8288"
    )]
    pub url: String,
    /// A deployed stack instead (its CloudFormation name; AWS credentials,
    /// region and `AWS_ENDPOINT_URL` from the usual places). Needs a
    /// `hookflow` built with `--features aws`.
    #[arg(long, env = "HOOKFLOW_STACK")]
    pub stack: Option<String>,
    /// Its admin token (when it listens beyond loopback).
    #[arg(long, env = ADMIN_TOKEN_VAR, hide_env_values = true)]
    pub token: Option<String>,
    /// JSON instead of tables (for scripts).
    #[arg(long)]
    pub json: bool,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("stack", &self.stack)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("json", &self.json)
            .finish()
    }
}

/// Asks the user to confirm `question`; `Ok(false)` declines.
pub type Confirm<'a> = &'a (dyn Fn(&str) -> anyhow::Result<bool> + Sync);

/// Asks on the terminal; without one, refuses (pass `--yes`).
///
/// # Errors
/// No terminal, or reading the answer failed.
pub fn ask_on_terminal(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question}: pass --yes to go ahead (or --dry-run)");
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

/// `hookflow runs`.
#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// Runs, newest first.
    List {
        /// Only this function's.
        #[arg(long)]
        function: Option<String>,
        /// Only runs with this status (`failed`, `sleeping`, ...).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// A run with its steps.
    Show {
        /// The run id.
        id: String,
    },
    /// Cancel an unfinished run.
    Cancel {
        /// The run id.
        id: String,
    },
    /// Start a new run of the same function and event.
    Replay {
        /// The run id.
        id: String,
    },
    /// Rerun a finished run from one of its steps (those before it are kept).
    Rerun {
        /// The run id.
        id: String,
        /// The step to run again, with everything after it.
        #[arg(long)]
        from: String,
    },
}

/// `hookflow events`.
#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Send an event.
    Send {
        /// Its name (`shop/order.paid`).
        name: String,
        /// Its data, as JSON.
        #[arg(long, default_value = "{}")]
        data: String,
        /// Its id (deduplicates for a day); default: a fresh one.
        #[arg(long)]
        id: Option<String>,
    },
    /// An event and the runs it started.
    Show {
        /// The event id.
        id: String,
    },
}

/// `hookflow dlq`.
#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Failed runs and dead messages.
    List {
        /// Only this function's failed runs.
        #[arg(long)]
        function: Option<String>,
    },
    /// Replay each failed run once and put dead messages back (counts
    /// first and asks, unless `--yes`).
    Redrive {
        /// Only this function's failed runs (then no message).
        #[arg(long)]
        function: Option<String>,
        /// Act without asking.
        #[arg(long, short)]
        yes: bool,
    },
}

/// Which runs a bulk `cancel` or `replay` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct BulkArgs {
    /// Only this function's runs.
    #[arg(long)]
    pub function: Option<String>,
    /// Only runs with this status.
    #[arg(long)]
    pub status: Option<String>,
    /// Created since: RFC 3339, or an age like `30m`, `2h`, `7d`.
    #[arg(long)]
    pub since: Option<String>,
    /// Created before: RFC 3339, or an age.
    #[arg(long)]
    pub until: Option<String>,
    /// A CEL condition over the trigger `event`.
    #[arg(long = "if")]
    pub condition: Option<String>,
    /// Only count what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// Act without asking.
    #[arg(long, short)]
    pub yes: bool,
}

/// An operator command and its target.
#[derive(Debug)]
pub enum Op {
    /// `runs ...`
    Runs(RunsCommand),
    /// `events ...`
    Events(EventsCommand),
    /// `dlq ...`
    Dlq(DlqCommand),
    /// `cancel --function ..`
    Cancel(BulkArgs),
    /// `replay --status failed ..`
    Replay(BulkArgs),
}

/// What the commands ask of a Hookflow, answered as `hookflow dev`'s API
/// answers (see `views.rs`): `hookflow dev` over HTTP, or a deployed stack
/// (`stack.rs`).
pub(crate) trait Api {
    async fn runs(
        &self,
        function: Option<&str>,
        status: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Value>;
    async fn run(&self, id: &str) -> anyhow::Result<Value>;
    async fn cancel(&self, id: &str) -> anyhow::Result<Value>;
    async fn replay(&self, id: &str) -> anyhow::Result<Value>;
    async fn rerun(&self, id: &str, from: &str) -> anyhow::Result<Value>;
    async fn send(&self, event: Value) -> anyhow::Result<Value>;
    async fn event(&self, id: &str) -> anyhow::Result<Value>;
    async fn dead_letters(&self, function: Option<&str>) -> anyhow::Result<Value>;
    async fn redrive(&self, function: Option<&str>) -> anyhow::Result<Value>;
    async fn bulk(&self, body: Value) -> anyhow::Result<Value>;
}

impl Api for Dev {
    async fn runs(
        &self,
        function: Option<&str>,
        status: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Value> {
        let mut path = format!("/runs?limit={limit}");
        if let Some(f) = function {
            path.push_str(&format!("&function={}", q(f)));
        }
        if let Some(s) = status {
            path.push_str(&format!("&status={}", q(s)));
        }
        self.call(Method::GET, &path, None).await
    }

    async fn run(&self, id: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, &format!("/runs/{}", seg(id)), None)
            .await
    }

    async fn cancel(&self, id: &str) -> anyhow::Result<Value> {
        self.call(Method::POST, &format!("/runs/{}/cancel", seg(id)), None)
            .await
    }

    async fn replay(&self, id: &str) -> anyhow::Result<Value> {
        self.call(Method::POST, &format!("/runs/{}/replay", seg(id)), None)
            .await
    }

    async fn rerun(&self, id: &str, from: &str) -> anyhow::Result<Value> {
        let path = format!("/runs/{}/rerun?from={}", seg(id), q(from));
        self.call(Method::POST, &path, None).await
    }

    async fn send(&self, event: Value) -> anyhow::Result<Value> {
        self.call(Method::POST, "/events", Some(event)).await
    }

    async fn event(&self, id: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, &format!("/events/{}", seg(id)), None)
            .await
    }

    async fn dead_letters(&self, function: Option<&str>) -> anyhow::Result<Value> {
        let path = function.map_or_else(
            || "/dead-letters".to_owned(),
            |f| format!("/dead-letters?function={}", q(f)),
        );
        self.call(Method::GET, &path, None).await
    }

    async fn redrive(&self, function: Option<&str>) -> anyhow::Result<Value> {
        let path = function.map_or_else(
            || "/dead-letters/redrive".to_owned(),
            |f| format!("/dead-letters/redrive?function={}", q(f)),
        );
        self.call(Method::POST, &path, None).await
    }

    async fn bulk(&self, body: Value) -> anyhow::Result<Value> {
        self.call(Method::POST, "/runs/bulk", Some(body)).await
    }
}

/// A `hookflow dev` over HTTP.
struct Dev {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Dev {
    fn new(target: &Target) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
            url: target.url.trim_end_matches('/').to_owned(),
            token: target.token.clone().filter(|t| !t.trim().is_empty()),
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach hookflow dev at {} (is it running? --dev URL)",
                self.url
            )
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status == StatusCode::UNAUTHORIZED {
            bail!("hookflow dev refused the request: set {ADMIN_TOKEN_VAR} (or --token)");
        }
        if !status.is_success() {
            let message = value["error"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            bail!("{status}: {message}");
        }
        Ok(value)
    }
}

/// Percent-encodes a query value.
fn q(value: &str) -> String {
    url_encode(value)
}

/// `value` percent-encoded but for unreserved characters (a query value or
/// a path segment: `/`, `?` and `#` are encoded too).
pub(crate) fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path segment (an id), percent-encoded.
fn seg(value: &str) -> String {
    url_encode(value)
}

/// Milliseconds since the epoch of `text` (RFC 3339, or an age before `now`
/// like `90s`, `30m`, `2h`, `7d`).
///
/// # Errors
/// When it is neither.
pub fn parse_time(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = digits
        .parse()
        .with_context(|| format!("`{text}` is neither RFC 3339 nor an age like 2h"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("`{text}`: an age ends in s, m, h or d"),
    };
    n.checked_mul(unit_ms)
        .and_then(|ago| now_ms.checked_sub(ago))
        .with_context(|| format!("`{text}` is too long ago"))
}

fn time(ms: &Value) -> String {
    ms.as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

fn duration(from: &Value, to: &Value) -> String {
    match (from.as_i64(), to.as_i64()) {
        (Some(a), Some(b)) if b >= a => {
            let ms = b - a;
            if ms < 1_000 {
                format!("{ms} ms")
            } else if ms < 120_000 {
                format!("{:.1} s", ms as f64 / 1_000.0)
            } else {
                format!("{} min", ms / 60_000)
            }
        }
        _ => "-".to_owned(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn short(value: &Value, max: usize) -> String {
    let t = text(value);
    if t.chars().count() > max {
        format!("{}…", t.chars().take(max - 1).collect::<String>())
    } else {
        t
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

fn runs_table(runs: &[Value]) -> String {
    if runs.is_empty() {
        return "no runs".to_owned();
    }
    let mut t = table(&["run", "function", "status", "created", "took", "error"]);
    for r in runs {
        t.add_row(vec![
            text(&r["id"]),
            text(&r["function_id"]),
            text(&r["status"]),
            time(&r["created_at"]),
            duration(&r["started_at"], &r["ended_at"]),
            short(&r["error"], 60),
        ]);
    }
    t.to_string()
}

fn run_view(view: &Value) -> String {
    let mut out = format!(
        "run {}  {}  {}\nevent {} ({})  created {}{}\n",
        text(&view["id"]),
        text(&view["function_id"]),
        text(&view["status"]),
        text(&view["event"]["name"]),
        text(&view["event"]["id"]),
        time(&view["created_at"]),
        view["replay_of"]
            .as_str()
            .map_or_else(String::new, |r| format!("  replay of {r}")),
    );
    let steps = view["steps"].as_array().cloned().unwrap_or_default();
    if !steps.is_empty() {
        let mut t = table(&[
            "#",
            "step",
            "kind",
            "status",
            "attempts",
            "took",
            "output / error",
        ]);
        for s in &steps {
            let result = if s["error"].is_null() {
                &s["output"]
            } else {
                &s["error"]
            };
            t.add_row(vec![
                text(&s["position"]),
                text(&s["id"]),
                text(&s["kind"]),
                text(&s["status"]),
                text(&s["attempts"]),
                duration(&s["started_at"], &s["ended_at"]),
                short(result, 60),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    if !view["error"].is_null() {
        out.push_str(&format!("error: {}\n", text(&view["error"])));
    } else if !view["output"].is_null() {
        out.push_str(&format!("output: {}\n", view["output"]));
    }
    out
}

impl BulkArgs {
    fn body(&self, action: &str, dry_run: bool, now_ms: i64) -> anyhow::Result<Value> {
        let since = self
            .since
            .as_deref()
            .map(|t| parse_time(t, now_ms))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|t| parse_time(t, now_ms))
            .transpose()?;
        Ok(json!({
            "function": self.function, "status": self.status, "since": since, "until": until,
            "if": self.condition, "action": action, "dry_run": dry_run,
        }))
    }
}

/// A bulk action: a dry run first (its count printed), then, unless
/// `--dry-run`, the action itself once confirmed (`--yes`, or `y` on a
/// terminal), under a spinner.
async fn bulk(
    api: &impl Api,
    args: &BulkArgs,
    action: &str,
    json_out: bool,
    confirm: Confirm<'_>,
) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp_millis();
    let dry = api.bulk(args.body(action, true, now)?).await?;
    let would = dry["acted"].as_array().map_or(0, Vec::len);
    if args.dry_run || would == 0 {
        if json_out {
            return Ok(dry.to_string());
        }
        return Ok(format!(
            "{would} run(s) to {action} ({} matched, {} skipped, {} already replayed{}){}",
            dry["matched"],
            dry["skipped"],
            dry["already_replayed"],
            if dry["more"] == true {
                ", more beyond 10,000"
            } else {
                ""
            },
            if args.dry_run {
                "; dry run, nothing done"
            } else {
                ""
            }
        ));
    }
    if !args.yes && !confirm(&format!("{action} {would} run(s)?"))? {
        return Ok("nothing done".to_owned());
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    if json_out {
        spinner.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    spinner.set_message(format!("{action}ing {would} run(s)"));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let done = api.bulk(args.body(action, false, now)?).await;
    spinner.finish_and_clear();
    let done = done?;
    if json_out {
        return Ok(done.to_string());
    }
    let acted = done["acted"].as_array().map_or(0, Vec::len);
    Ok(format!(
        "{acted} run(s) {action}{} ({} skipped){}",
        if action == "cancel" { "led" } else { "ed" },
        done["skipped"],
        if done["more"] == true {
            "; more matched: run it again"
        } else {
            ""
        }
    ))
}

/// Runs `op` against `target`, asking on the terminal before a bulk
/// action; the text to print.
///
/// # Errors
/// An unreachable server, a refused request (its message), bad arguments.
pub async fn execute(op: &Op, target: &Target) -> anyhow::Result<String> {
    execute_with(op, target, &ask_on_terminal).await
}

/// [`execute`], confirming bulk actions with `confirm`.
///
/// # Errors
/// As [`execute`].
pub async fn execute_with(
    op: &Op,
    target: &Target,
    confirm: Confirm<'_>,
) -> anyhow::Result<String> {
    match target.stack.as_deref().filter(|s| !s.trim().is_empty()) {
        None => run_op(op, &Dev::new(target)?, target.json, confirm).await,
        Some(stack) => on_stack(op, stack, target.json, confirm).await,
    }
}

#[cfg(feature = "aws")]
async fn on_stack(
    op: &Op,
    stack: &str,
    json_out: bool,
    confirm: Confirm<'_>,
) -> anyhow::Result<String> {
    let sdk = aws_config::load_from_env().await;
    let stack = crate::stack::Stack::connect(&sdk, stack).await?;
    execute_on_stack(op, &stack, json_out, confirm).await
}

#[cfg(not(feature = "aws"))]
async fn on_stack(
    _op: &Op,
    stack: &str,
    _json_out: bool,
    _confirm: Confirm<'_>,
) -> anyhow::Result<String> {
    bail!(
        "--stack {stack}: this hookflow was built without AWS support; build it with \
         `cargo install --path infra --features aws` (or `cargo run --features aws --bin hookflow -- ...`)"
    )
}

/// Runs `op` against a deployed `stack` (see [`crate::stack`]).
///
/// # Errors
/// As [`execute`].
#[cfg(feature = "aws")]
pub async fn execute_on_stack(
    op: &Op,
    stack: &crate::stack::Stack,
    json_out: bool,
    confirm: Confirm<'_>,
) -> anyhow::Result<String> {
    run_op(op, stack, json_out, confirm).await
}

async fn run_op(
    op: &Op,
    api: &impl Api,
    json_out: bool,
    confirm: Confirm<'_>,
) -> anyhow::Result<String> {
    let render = |value: Value, human: &dyn Fn(&Value) -> String| {
        if json_out {
            value.to_string()
        } else {
            human(&value)
        }
    };
    Ok(match op {
        Op::Runs(RunsCommand::List {
            function,
            status,
            limit,
        }) => {
            let out = api
                .runs(function.as_deref(), status.as_deref(), *limit)
                .await?;
            render(out, &|v| {
                runs_table(v["runs"].as_array().map_or(&[], Vec::as_slice))
            })
        }
        Op::Runs(RunsCommand::Show { id }) => render(api.run(id).await?, &run_view),
        Op::Runs(RunsCommand::Cancel { id }) => {
            let out = api.cancel(id).await?;
            render(out, &|v| format!("{id}: {}", text(&v["status"])))
        }
        Op::Runs(RunsCommand::Replay { id }) => {
            let out = api.replay(id).await?;
            render(out, &|v| format!("replay of {id}: run {}", text(&v["id"])))
        }
        Op::Runs(RunsCommand::Rerun { id, from }) => {
            let out = api.rerun(id, from).await?;
            render(out, &|v| {
                format!("rerun of {id} from `{from}`: run {}", text(&v["id"]))
            })
        }
        Op::Events(EventsCommand::Send { name, data, id }) => {
            let data: Value = serde_json::from_str(data).context("--data is not JSON")?;
            let mut event = json!({"name": name, "data": data});
            if let Some(id) = id {
                event["id"] = json!(id);
            }
            let out = api.send(event).await?;
            render(out, &|v| {
                let e = &v["events"][0];
                let runs: Vec<String> = e["runs"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .map(|r| {
                                format!("{} ({})", text(&r["run_id"]), text(&r["function_id"]))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "event {}{}: {}",
                    text(&e["id"]),
                    if e["duplicate"] == true {
                        " (duplicate)"
                    } else {
                        ""
                    },
                    if runs.is_empty() {
                        "no run".to_owned()
                    } else {
                        runs.join(", ")
                    }
                )
            })
        }
        Op::Events(EventsCommand::Show { id }) => {
            let out = api.event(id).await?;
            render(out, &|v| {
                let mut s = format!(
                    "event {} ({}) received {}\ndata: {}\n",
                    text(&v["event"]["id"]),
                    text(&v["event"]["name"]),
                    time(&v["received_at"]),
                    v["event"]["data"]
                );
                s.push_str(&runs_table(v["runs"].as_array().map_or(&[], Vec::as_slice)));
                s
            })
        }
        Op::Dlq(DlqCommand::List { function }) => {
            let out = api.dead_letters(function.as_deref()).await?;
            render(out, &|v| {
                let runs = v["failed_runs"].as_array().map_or(&[][..], Vec::as_slice);
                let dead = v["dead_letter_count"].as_u64().unwrap_or(0);
                format!("{}\n{dead} dead message(s)", runs_table(runs))
            })
        }
        Op::Dlq(DlqCommand::Redrive { function, yes }) => {
            let listed = api.dead_letters(function.as_deref()).await?;
            let runs = listed["failed_runs"].as_array().map_or(0, Vec::len);
            let messages = if function.is_some() {
                0
            } else {
                listed["dead_letter_count"].as_u64().unwrap_or(0)
            };
            if runs == 0 && messages == 0 {
                return Ok(if json_out {
                    json!({"redriven": 0, "replayed": []}).to_string()
                } else {
                    "nothing to redrive".to_owned()
                });
            }
            if !yes
                && !confirm(&format!(
                    "replay {runs} failed run(s) and redrive {messages} dead message(s)?"
                ))?
            {
                return Ok("nothing done".to_owned());
            }
            let out = api.redrive(function.as_deref()).await?;
            render(out, &|v| {
                format!(
                    "{} failed run(s) replayed, {} message(s) redriven",
                    v["replayed"].as_array().map_or(0, Vec::len),
                    v["redriven"]
                )
            })
        }
        Op::Cancel(args) => bulk(api, args, "cancel", json_out, confirm).await?,
        Op::Replay(args) => bulk(api, args, "replay", json_out, confirm).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_ages() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_time("7d", now).unwrap(), now - 604_800_000);
        assert_eq!(
            parse_time("2025-06-02T10:15:30Z", now).unwrap(),
            1_748_859_330_000
        );
        assert!(parse_time("soon", now).is_err());
        assert!(parse_time("3w", now).is_err());
        assert!(parse_time("9999999999999999d", now).is_err());
        assert_eq!(url_encode("a b&c"), "a%20b%26c");
    }
}
