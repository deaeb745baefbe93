//! `lockhog cleanup [-b URL]`: removes stale resources nobody holds and says how many.

use crate::cli::CleanupArgs;
use crate::exit::{self, Outcome};
use crate::lock;
use crate::output;

pub async fn run(args: CleanupArgs) -> Outcome {
    let locker = lock::connect(&args.backend).await?;
    let report = locker.cleanup().await?;
    tracing::info!(
        url = locker.url(),
        removed = report.removed,
        kept = report.kept,
        "cleanup done"
    );
    let line = format!("cleanup: removed {} kept {}", report.removed, report.kept);
    output::emit(&line).map_err(|e| {
        exit::Failure::new(exit::UNAVAILABLE, format!("cannot write to stdout: {e}"))
    })?;
    Ok(exit::SUCCESS)
}
