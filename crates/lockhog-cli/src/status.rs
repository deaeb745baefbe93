//! `lockhog status [-b URL] [--json] [NAME…]`: one line per lock, `<state> <NAME> <RESOURCE>
//! [<holder>]`, or every lock of the namespace when no NAME is given.

use crate::cli::StatusArgs;
use crate::exit::{self, Failure, Outcome};
use crate::lock::{self, Target};
use crate::output;

pub async fn run(args: StatusArgs) -> Outcome {
    lock::check_targets(&args.backend, &Target::all(&args.names, &args.resources))?;
    let locker = lock::connect(&args.backend).await?;
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let resources: Vec<&str> = args.resources.iter().map(String::as_str).collect();
    let mut statuses = Vec::new();
    // No names and no resources: every lock of the namespace.
    if !names.is_empty() || resources.is_empty() {
        statuses = locker.status(&names).await?;
    }
    if !resources.is_empty() {
        statuses.extend(locker.status_resources(&resources).await?);
    }
    let lines: Vec<String> = statuses
        .iter()
        .map(|s| output::status(s, args.json))
        .collect();
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    write_all(&text)?;
    Ok(exit::SUCCESS)
}

/// Writes everything at once; a failure to write is reported, as the output is the point.
pub fn write_all(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("cannot write to stdout: {e}")))
}
