//! Finding migration files and turning them into ordered [`Migration`]s.

use super::naming::{NameInfo, classify_name, compare_versions, natural_cmp};
use super::{
    MigrateError, Migration, SourceFormat, TxWrap, alembic, directives, liquibase, sha256_hex,
    updown,
};
use crate::model::Engine;
use crate::sql::split::split_checked;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};

/// How to read the given paths.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Forces the engine; otherwise per file: directive, path hint, content sniffing.
    pub engine: Option<Engine>,
    /// Forces the source format; otherwise detected per file.
    pub format: Option<SourceFormat>,
}

/// Most statements one plan analyzes. Each costs under a kilobyte of facts; the
/// cap keeps a plan within its memory budget whatever the input (a migration this
/// long is a data dump, not a reviewable change).
pub const MAX_STATEMENTS: usize = 100_000;

fn too_many() -> String {
    format!(
        "more than {MAX_STATEMENTS} statements to plan: load data with the database's own tools, or plan fewer migrations at a time"
    )
}

/// Reads files and directories (recursively, `*.sql`) into migrations in apply order.
pub fn load_paths(paths: &[PathBuf], opts: &LoadOptions) -> Result<Vec<Migration>, MigrateError> {
    let mut files: Vec<(PathBuf, NameInfo)> = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| MigrateError::Io {
            path: p.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            for f in found {
                if let Some(info) = classify_name(&f) {
                    files.push((f, info));
                }
            }
        } else {
            // A file named explicitly is read even without a conventional name.
            let info = classify_name(p).unwrap_or_else(|| NameInfo {
                format: SourceFormat::Plain,
                version: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
                description: String::new(),
                repeatable: false,
            });
            files.push((p.clone(), info));
        }
    }
    files.sort_by(|(pa, a), (pb, b)| file_order(pa, a, pb, b));
    files.dedup_by(|a, b| a.0 == b.0);

    // Reading and splitting files is independent work: every core takes files.
    let loaded = crate::sql::par::map(
        &files,
        |(path, info)| {
            let mut v = Vec::new();
            load_file(path, info.clone(), opts, &mut v).map(|_| v)
        },
        |(path, _)| {
            Err(MigrateError::Other {
                path: path.display().to_string(),
                message: "internal error while reading this file".into(),
            })
        },
    );
    let mut out: Vec<Migration> = Vec::new();
    let mut total = 0usize;
    // The first error in file order, so the message is the same on every run.
    for r in loaded {
        for m in r? {
            total += m.statements.len();
            if total > MAX_STATEMENTS {
                return Err(MigrateError::Other {
                    path: m.path.display().to_string(),
                    message: too_many(),
                });
            }
            out.push(m);
        }
    }
    check_duplicates(&out)?;
    Ok(out)
}

fn file_order(pa: &Path, a: &NameInfo, pb: &Path, b: &NameInfo) -> Ordering {
    a.repeatable
        .cmp(&b.repeatable)
        .then_with(|| compare_versions(&a.version, &b.version))
        .then_with(|| natural_cmp(&pa.to_string_lossy(), &pb.to_string_lossy()))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), MigrateError> {
    let rd = std::fs::read_dir(dir).map_err(|source| MigrateError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in rd {
        let entry = entry.map_err(|source| MigrateError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let p = entry.path();
        let ft = entry.file_type().map_err(|source| MigrateError::Io {
            path: p.display().to_string(),
            source,
        })?;
        if ft.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("sql")) {
            out.push(p);
        }
    }
    Ok(())
}

fn load_file(
    path: &Path,
    info: NameInfo,
    opts: &LoadOptions,
    out: &mut Vec<Migration>,
) -> Result<(), MigrateError> {
    let shown = path.display().to_string();
    // Opening a FIFO or a terminal would wait forever for a writer.
    let meta = std::fs::metadata(path).map_err(|source| MigrateError::Io {
        path: shown.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(MigrateError::Other {
            path: shown,
            message: "not a regular file (a FIFO, socket or device): migrations are read from regular files only".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| MigrateError::Io {
        path: shown.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        MigrateError::Syntax {
            path: shown.clone(),
            line: upto.iter().filter(|&&b| b == b'\n').count() + 1,
            message: "file is not valid UTF-8".into(),
        }
    })?;
    // A file with goose/dbmate up/down annotations is never meant to run its down
    // half, whatever format was forced for the other files.
    let format = match (opts.format, updown::detect(&text)) {
        (Some(f @ (SourceFormat::Liquibase | SourceFormat::Alembic)), _) => f,
        (_, Some(updown::Tool::Goose)) => SourceFormat::Goose,
        (_, Some(updown::Tool::Dbmate)) => SourceFormat::Dbmate,
        (Some(f), None) => f,
        (None, None) => {
            if liquibase::is_formatted_sql(&text) {
                SourceFormat::Liquibase
            } else if alembic::is_offline_sql(&text) {
                SourceFormat::Alembic
            } else {
                info.format
            }
        }
    };
    let file_directives = directives::parse(&text, &shown, 1)?;
    let engine = opts
        .engine
        .or(file_directives.engine)
        .unwrap_or_else(|| sniff_engine(path, &text));

    let make = |version: String,
                description: String,
                body: &str,
                first_line: usize,
                tx: TxWrap,
                delim: &str,
                split_statements: bool,
                given: Option<Vec<crate::sql::split::RawStatement>>|
     -> Result<Migration, MigrateError> {
        let d = directives::parse(body, &shown, first_line)?;
        let tx = match d.transaction.as_deref() {
            Some("none") => TxWrap::AsWritten,
            Some("whole") => TxWrap::Whole,
            _ => tx,
        };
        let statements = if let Some(given) = given {
            given
        } else if split_statements {
            split_checked(body, engine, first_line, delim, MAX_STATEMENTS).map_err(|e| {
                MigrateError::Syntax {
                    path: shown.clone(),
                    line: e.line,
                    message: e.message,
                }
            })?
        } else {
            let lead = body.len() - body.trim_start().len();
            let first = first_line + body[..lead].matches('\n').count();
            vec![crate::sql::split::RawStatement {
                sql: body.trim().trim_end_matches(';').trim().to_string(),
                line: first,
            }]
            .into_iter()
            .filter(|s| !s.sql.is_empty())
            .collect()
        };
        if let Some(s) = statements.get(MAX_STATEMENTS) {
            return Err(MigrateError::Syntax {
                path: shown.clone(),
                line: s.line,
                message: too_many(),
            });
        }
        Ok(Migration {
            version,
            description,
            path: path.to_path_buf(),
            checksum: sha256_hex(body.as_bytes()),
            engine,
            format,
            repeatable: info.repeatable,
            tx,
            directives: d,
            statements,
            // Filled by the caller, which owns the text (no copy of large files).
            text: String::new(),
        })
    };

    match format {
        SourceFormat::Liquibase => {
            for cs in liquibase::changesets(&text, &shown)? {
                let tx = if cs.run_in_transaction {
                    TxWrap::Whole
                } else {
                    TxWrap::AsWritten
                };
                let delim = cs.end_delimiter.clone().unwrap_or_else(|| ";".into());
                let mut m = make(
                    format!("{}:{}", cs.author, cs.id),
                    format!("changeset {}:{}", cs.author, cs.id),
                    &cs.text,
                    cs.first_line,
                    tx,
                    &delim,
                    cs.split_statements,
                    None,
                )?;
                m.text = cs.text;
                out.push(m);
            }
        }
        SourceFormat::Alembic => {
            let pre = format!("{}-preamble", info.version);
            for r in alembic::revisions(&text, &pre) {
                let mut m = make(
                    r.version,
                    r.description,
                    &r.text,
                    r.first_line,
                    TxWrap::AsWritten,
                    ";",
                    true,
                    None,
                )?;
                m.text = r.text;
                out.push(m);
            }
        }
        SourceFormat::Goose | SourceFormat::Dbmate => {
            let tool = if format == SourceFormat::Goose {
                updown::Tool::Goose
            } else {
                updown::Tool::Dbmate
            };
            let up = updown::up(&text, tool, engine, &shown)?;
            // Both tools wrap a migration in one transaction unless told not to.
            let tx = if up.no_transaction {
                TxWrap::AsWritten
            } else {
                TxWrap::Whole
            };
            let mut m = make(
                info.version,
                info.description,
                &text,
                1,
                tx,
                ";",
                true,
                Some(up.statements),
            )?;
            m.text = text;
            out.push(m);
        }
        _ => {
            let tx = match format {
                SourceFormat::Flyway | SourceFormat::Diesel => TxWrap::Whole,
                SourceFormat::GolangMigrate if !shown.contains(".autocommit.") => TxWrap::Whole,
                _ => TxWrap::AsWritten,
            };
            // The checksum covers the whole file's bytes, as Flyway and friends see them.
            let mut m = make(
                info.version,
                info.description,
                &text,
                1,
                tx,
                ";",
                true,
                None,
            )?;
            m.text = text;
            out.push(m);
        }
    }
    Ok(())
}

/// Guesses the engine from path words, then from dialect-only syntax.
fn sniff_engine(path: &Path, text: &str) -> Engine {
    let p = path.to_string_lossy().to_ascii_lowercase();
    let has = |w: &str| {
        p.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|s| s == w)
    };
    if has("mysql") || has("mariadb") {
        return Engine::Mysql;
    }
    if has("postgres") || has("postgresql") || has("pg") || has("pgsql") {
        return Engine::Postgres;
    }
    let t = text.to_ascii_lowercase();
    let my = [
        "`",
        "auto_increment",
        "engine=innodb",
        "engine = innodb",
        "delimiter ",
        "unsigned",
    ]
    .iter()
    .filter(|k| t.contains(*k))
    .count();
    let pg = [
        "$$",
        "::",
        "concurrently",
        "serial",
        "jsonb",
        "timestamptz",
        "plpgsql",
    ]
    .iter()
    .filter(|k| t.contains(*k))
    .count();
    if my > pg {
        Engine::Mysql
    } else {
        Engine::Postgres
    }
}

fn check_duplicates(ms: &[Migration]) -> Result<(), MigrateError> {
    let mut seen: std::collections::HashMap<String, &Migration> = std::collections::HashMap::new();
    for m in ms {
        if m.format != SourceFormat::Flyway || m.repeatable {
            continue;
        }
        // Flyway compares versions numerically: V1, V1.0 and V01 are one version.
        if let Some(prev) = seen.insert(super::naming::canonical_version(&m.version), m) {
            return Err(MigrateError::Other {
                path: m.path.display().to_string(),
                message: format!(
                    "Flyway version {} is also used by {}: versions must be unique",
                    m.version,
                    prev.path.display()
                ),
            });
        }
    }
    Ok(())
}
