//! `cutover audit verify|head|repair|show|export`.
//!
//! Every reader exits 1 on a trail that does not verify and says so on
//! stderr: a compliance export that silently stops at a tampered record
//! would look complete.

use super::plan::InputError;
use crate::audit::{self, Anchor, AuditKey, Problem};
use crate::cli::{AuditCommand, AuditOpts};

fn key(o: &AuditOpts) -> Result<AuditKey, InputError> {
    AuditKey::load(o.key_file.as_deref()).map_err(|e| InputError(e.to_string()))
}

fn err(e: impl std::fmt::Display) -> InputError {
    InputError(e.to_string())
}

fn not_verified(o: &AuditOpts, records: u64, p: &Problem) {
    eprintln!(
        "cutover: {}: NOT VERIFIED after {records} good record(s): {p}",
        o.trail.display()
    );
}

/// Runs an audit subcommand; exits 1 when the trail does not verify.
pub fn run(c: &AuditCommand) -> Result<i32, InputError> {
    match c {
        AuditCommand::Verify { opts, expect_head } => {
            let expected: Option<Anchor> = expect_head
                .as_deref()
                .map(|h| {
                    h.parse()
                        .map_err(|m| InputError(format!("--expect-head {m}")))
                })
                .transpose()?;
            let (entries, mut r) = audit::read_file(&opts.trail, &key(opts)?).map_err(err)?;
            // A published head outranks the side file: it says what is missing.
            if let Some(a) = &expected
                && !matches!(
                    r.problem,
                    Some(Problem::BadRecord { .. } | Problem::WrongKey)
                )
                && let Some(p) = audit::check_expected_head(&entries, a)
            {
                r.problem = Some(p);
            }
            match &r.problem {
                None => {
                    println!(
                        "{}: {} record(s) verify; head {} {}",
                        opts.trail.display(),
                        r.records,
                        r.records,
                        r.head
                    );
                    Ok(0)
                }
                Some(p) => {
                    println!(
                        "{}: NOT VERIFIED after {} good record(s): {p}",
                        opts.trail.display(),
                        r.records
                    );
                    Ok(1)
                }
            }
        }
        AuditCommand::Head(h) => {
            if let Some(service) = crate::serve::client::socket(&h.service, None) {
                return crate::serve::client::head(&service);
            }
            let o = &h.opts;
            let r = audit::verify_file(&o.trail, &key(o)?).map_err(err)?;
            if let Some(p) = &r.problem {
                not_verified(o, r.records, p);
                return Ok(1);
            }
            println!("{} {}", r.records, r.head);
            Ok(0)
        }
        AuditCommand::Repair { opts, reason } => {
            let by = crate::supervisor::peer::current_user();
            let before = audit::verify_file(&opts.trail, &key(opts)?).map_err(err)?;
            let a = audit::repair(&opts.trail, key(opts)?, reason, &by).map_err(err)?;
            println!(
                "{}: sealed record {} ({}); head {a}",
                opts.trail.display(),
                a.records,
                before
                    .problem
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "head mismatch".into())
            );
            Ok(0)
        }
        AuditCommand::Show { opts, filter } => {
            let (out, problem) =
                audit::show_file(&opts.trail, &key(opts)?, filter.as_deref()).map_err(err)?;
            print!("{out}");
            Ok(match problem {
                Some(p) => {
                    eprintln!("cutover: {} does not verify: {p}", opts.trail.display());
                    1
                }
                None => 0,
            })
        }
        AuditCommand::Export {
            opts,
            format,
            since,
            partial,
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
            let (out, problem) =
                audit::export_file(&opts.trail, &key(opts)?, f, since).map_err(err)?;
            match problem {
                None => {
                    print!("{out}");
                    Ok(0)
                }
                Some(p) => {
                    if *partial {
                        print!("{out}");
                        eprintln!(
                            "cutover: {} does not verify: {p}; exported only the records before it (--partial)",
                            opts.trail.display()
                        );
                    } else {
                        eprintln!(
                            "cutover: {} does not verify: {p}; nothing exported (--partial exports the verified records before it)",
                            opts.trail.display()
                        );
                    }
                    Ok(1)
                }
            }
        }
    }
}
