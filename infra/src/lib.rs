//! The `hookflow` command line: `dev` (the local server on the embedded
//! backend), `bench` (throughput and latency on the embedded backend),
//! `functions` (what the registry holds), `template generate|check` (the
//! per-function part of `template.yaml`, from the registry), and the
//! operator commands against a running `hookflow dev` ([`ops`]: `runs`,
//! `events`, `dlq`, `cancel`, `replay`).

pub mod access;
pub mod api;
pub mod bench;
pub mod dashboard;
pub mod dev;
pub mod docs_api;
pub mod logging;
pub mod ops;
#[cfg(feature = "aws")]
pub mod stack;
pub mod template;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Default port of `hookflow dev`.
pub const DEFAULT_PORT: u16 = 8288;

/// Hookflow: durable workflows for webhooks, on AWS or on one machine.
#[derive(Debug, Parser)]
#[command(name = "hookflow", version, about)]
pub struct Cli {
    /// Log format: `pretty` (for terminals) or `json`.
    #[arg(
        long,
        global = true,
        env = "HOOKFLOW_LOG_FORMAT",
        default_value = "pretty"
    )]
    pub log_format: logging::Format,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every registered function locally on the embedded SQLite backend.
    Dev(DevArgs),
    /// Measure runs/s and event-to-completion latency on the embedded backend.
    Bench(bench::BenchArgs),
    /// List the registered functions and their triggers.
    Functions,
    /// Work with the SAM template.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Runs on a `hookflow dev`: list, show, cancel, replay, rerun.
    Runs {
        /// Where, and how to answer.
        #[command(flatten)]
        target: ops::Target,
        /// What to do.
        #[command(subcommand)]
        command: ops::RunsCommand,
    },
    /// Events: send one, or show one with the runs it started.
    Events {
        /// Where, and how to answer.
        #[command(flatten)]
        target: ops::Target,
        /// What to do.
        #[command(subcommand)]
        command: ops::EventsCommand,
    },
    /// The dead-letter view: failed runs and dead messages; redrive them.
    Dlq {
        /// Where, and how to answer.
        #[command(flatten)]
        target: ops::Target,
        /// What to do.
        #[command(subcommand)]
        command: ops::DlqCommand,
    },
    /// Cancel every unfinished run matching a filter (counts first).
    Cancel {
        /// Where, and how to answer.
        #[command(flatten)]
        target: ops::Target,
        /// Which runs.
        #[command(flatten)]
        filter: ops::BulkArgs,
    },
    /// Replay every finished run matching a filter, once each (counts first).
    Replay {
        /// Where, and how to answer.
        #[command(flatten)]
        target: ops::Target,
        /// Which runs.
        #[command(flatten)]
        filter: ops::BulkArgs,
    },
}

/// `hookflow template` subcommands.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Write the per-function resources (Lambda, queue, DLQ, role, log group,
    /// alarms, cron schedules, dashboard, outputs) from the registry into the
    /// template's generated regions.
    Generate {
        /// The SAM template to update.
        #[arg(long, default_value = template::DEFAULT_TEMPLATE)]
        template: PathBuf,
    },
    /// Fail unless the template's generated regions are what `generate` writes.
    Check {
        /// The SAM template to check.
        #[arg(long, default_value = template::DEFAULT_TEMPLATE)]
        template: PathBuf,
    },
}

/// `hookflow dev` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, env = "HOOKFLOW_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, env = "HOOKFLOW_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// SQLite database file (created if missing).
    #[arg(long, env = "HOOKFLOW_DB", default_value = ".hookflow/dev.db")]
    pub db: PathBuf,
    /// Concurrent workers.
    #[arg(long, env = "HOOKFLOW_WORKERS", default_value_t = 64)]
    pub workers: usize,
    /// Also serve the benchmark workloads (`bench-five-steps` on
    /// `bench/five-steps`; the peers' `peers-three-steps` on
    /// `bench/three-steps`), for load and crash tests.
    #[arg(long)]
    pub bench: bool,
    /// With `--bench`: append every execution of a benchmark step to this
    /// file (`run step unix_ms`).
    #[arg(long, env = "HOOKFLOW_STEP_LOG", requires = "bench")]
    pub step_log: Option<PathBuf>,
}

impl DevArgs {
    /// The socket address to bind.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// Start-up failures (bad registry, database, port in use) with context.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // The benchmark logs only problems: per-run lines would measure the terminal.
    let level = if matches!(cli.command, Command::Dev(_) | Command::Functions) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.log_format, level);
    let (op, target) = match cli.command {
        Command::Runs { target, command } => (ops::Op::Runs(command), target),
        Command::Events { target, command } => (ops::Op::Events(command), target),
        Command::Dlq { target, command } => (ops::Op::Dlq(command), target),
        Command::Cancel { target, filter } => (ops::Op::Cancel(filter), target),
        Command::Replay { target, filter } => (ops::Op::Replay(filter), target),
        other => return run_local(other).await,
    };
    println!("{}", ops::execute(&op, &target).await?);
    Ok(())
}

async fn run_local(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Dev(args) => dev::serve(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Functions => {
            let registry = hookflow::Registry::new(hookflow_registry::functions())?;
            for function in registry.iter() {
                println!("{}\t{:?}", function.id(), function.triggers());
            }
            Ok(())
        }
        Command::Template(TemplateCommand::Generate { template }) => {
            template::run_generate(&template)
        }
        Command::Template(TemplateCommand::Check { template }) => template::run_check(&template),
        Command::Runs { .. }
        | Command::Events { .. }
        | Command::Dlq { .. }
        | Command::Cancel { .. }
        | Command::Replay { .. } => unreachable!("operator commands are handled by `run`"),
    }
}
