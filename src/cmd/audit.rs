//! `cutover audit verify|show|export`.

use super::plan::InputError;
use crate::audit::{self, AuditKey};
use crate::cli::{AuditCommand, AuditOpts};

fn key(o: &AuditOpts) -> Result<AuditKey, InputError> {
    AuditKey::load(o.key_file.as_deref()).map_err(|e| InputError(e.to_string()))
}

/// Runs an audit subcommand; verify exits 1 when the chain does not verify.
pub fn run(c: &AuditCommand) -> Result<i32, InputError> {
    match c {
        AuditCommand::Verify(o) => {
            let r =
                audit::verify_file(&o.trail, &key(o)?).map_err(|e| InputError(e.to_string()))?;
            match &r.problem {
                None => {
                    println!(
                        "{}: {} record(s) verify; head {}",
                        o.trail.display(),
                        r.records,
                        r.head
                    );
                    Ok(0)
                }
                Some(p) => {
                    println!(
                        "{}: NOT VERIFIED after {} good record(s): {p}",
                        o.trail.display(),
                        r.records
                    );
                    Ok(1)
                }
            }
        }
        AuditCommand::Show { opts, filter } => {
            let out = audit::show_file(&opts.trail, &key(opts)?, filter.as_deref())
                .map_err(|e| InputError(e.to_string()))?;
            print!("{out}");
            Ok(0)
        }
        AuditCommand::Export {
            opts,
            format,
            since,
        } => {
            let since = since
                .as_deref()
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&chrono::Utc))
                })
                .transpose()
                .map_err(|e| {
                    InputError(format!(
                        "--since: {e} (expected RFC 3339, e.g. 2026-11-01T00:00:00Z)"
                    ))
                })?;
            let f = if format == "csv" {
                audit::ExportFormat::Csv
            } else {
                audit::ExportFormat::Json
            };
            let out = audit::export_file(&opts.trail, &key(opts)?, f, since)
                .map_err(|e| InputError(e.to_string()))?;
            print!("{out}");
            Ok(0)
        }
    }
}
