//! `hookflow`: see `hookflow --help`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hookflow_cli::run(hookflow_cli::Cli::parse()).await
}
