//! Liquibase "formatted SQL" files: one migration per `--changeset author:id`.

use super::MigrateError;

/// One changeset's slice of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Changeset {
    pub author: String,
    pub id: String,
    pub text: String,
    /// Line of the first line of `text`.
    pub first_line: usize,
    pub split_statements: bool,
    pub end_delimiter: Option<String>,
    pub run_in_transaction: bool,
}

/// True when the file starts with the `--liquibase formatted sql` marker.
pub fn is_formatted_sql(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| normalize(l) == "--liquibaseformattedsql")
}

fn normalize(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Splits a formatted-SQL file into changesets.
pub fn changesets(text: &str, path: &str) -> Result<Vec<Changeset>, MigrateError> {
    let mut out: Vec<Changeset> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let lower = t.to_ascii_lowercase();
        if let Some(rest) = lower
            .strip_prefix("--changeset")
            .map(|_| &t["--changeset".len()..])
        {
            let err = |message: String| MigrateError::Syntax {
                path: path.to_string(),
                line: n + 1,
                message,
            };
            let mut words = rest.split_whitespace();
            let head = words
                .next()
                .ok_or_else(|| err("--changeset needs author:id".into()))?;
            let (author, id) = head
                .split_once(':')
                .ok_or_else(|| err(format!("--changeset needs author:id, found '{head}'")))?;
            let mut cs = Changeset {
                author: author.to_string(),
                id: id.to_string(),
                text: String::new(),
                first_line: n + 2,
                split_statements: true,
                end_delimiter: None,
                run_in_transaction: true,
            };
            for w in words {
                let Some((k, v)) = w.split_once(':') else {
                    continue;
                };
                match k.to_ascii_lowercase().as_str() {
                    "splitstatements" => {
                        cs.split_statements = parse_bool(v).ok_or_else(|| {
                            err(format!("splitStatements must be true or false, not '{v}'"))
                        })?
                    }
                    "rungintransaction" | "runintransaction" => {
                        cs.run_in_transaction = parse_bool(v).ok_or_else(|| {
                            err(format!("runInTransaction must be true or false, not '{v}'"))
                        })?
                    }
                    "enddelimiter" => {
                        let d = unescape_delimiter(v);
                        // An empty delimiter would match everywhere and end nothing.
                        if d.trim().is_empty() {
                            return Err(err("endDelimiter needs a value (for example endDelimiter:/ or endDelimiter:\\nGO)".into()));
                        }
                        cs.end_delimiter = Some(d);
                    }
                    _ => {}
                }
            }
            if let Some(prev) = out.iter().find(|p| p.author == cs.author && p.id == cs.id) {
                return Err(err(format!(
                    "changeset {author}:{id} is already defined at line {}: changeset ids must be unique",
                    prev.first_line - 1
                )));
            }
            out.push(cs);
        } else if let Some(cs) = out.last_mut() {
            cs.text.push_str(line);
            cs.text.push('\n');
        }
    }
    if out.is_empty() {
        return Err(MigrateError::Other {
            path: path.to_string(),
            message: "Liquibase formatted SQL without any --changeset".into(),
        });
    }
    Ok(out)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Liquibase treats endDelimiter as a regex; support the common literal forms.
fn unescape_delimiter(v: &str) -> String {
    match v {
        "\\nGO" | "\\ngo" => "\nGO".into(),
        other => other.replace("\\$", "$").replace("\\/", "/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_changesets_with_attributes() {
        let text = "--liquibase formatted sql\n\n--changeset alice:1\nCREATE TABLE a (id int);\n--rollback DROP TABLE a;\n--changeset bob:2 splitStatements:false runInTransaction:false endDelimiter:/\nCREATE INDEX CONCURRENTLY i ON a (id);\n";
        assert!(is_formatted_sql(text));
        let cs = changesets(text, "x.sql").unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(
            (cs[0].author.as_str(), cs[0].id.as_str(), cs[0].first_line),
            ("alice", "1", 4)
        );
        assert!(!cs[1].split_statements && !cs[1].run_in_transaction);
        assert_eq!(cs[1].end_delimiter.as_deref(), Some("/"));
    }

    #[test]
    fn bad_changeset_header_names_line() {
        let e = changesets("--liquibase formatted sql\n--changeset nobody\n", "x.sql").unwrap_err();
        assert!(e.to_string().starts_with("x.sql:2:"), "{e}");
    }

    #[test]
    fn empty_end_delimiter_and_duplicate_ids_are_errors() {
        for (text, line, what) in [
            (
                "--liquibase formatted sql\n--changeset a:1 endDelimiter:\nSELECT 1;\n",
                2,
                "endDelimiter",
            ),
            (
                "--liquibase formatted sql\n--changeset a:1 endDelimiter: \nSELECT 1;\n",
                2,
                "endDelimiter",
            ),
            (
                "--liquibase formatted sql\n--changeset a:1\nSELECT 1;\n--changeset a:1\nSELECT 2;\n",
                4,
                "line 2",
            ),
            (
                "--liquibase formatted sql\n--changeset a:x\n--changeset b:y\n--changeset a:x\n",
                4,
                "a:x",
            ),
        ] {
            let e = changesets(text, "c.sql").unwrap_err().to_string();
            assert!(e.starts_with(&format!("c.sql:{line}:")), "{e}");
            assert!(e.contains(what), "{e}");
        }
        // Same id, different author: distinct changesets.
        assert_eq!(
            changesets(
                "--liquibase formatted sql\n--changeset a:1\n--changeset b:1\n",
                "c.sql"
            )
            .unwrap()
            .len(),
            2
        );
    }
}
