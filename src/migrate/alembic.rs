//! Alembic offline SQL (`alembic upgrade --sql`): one migration per
//! `-- Running upgrade A -> B` comment.

/// One revision's slice of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// The target revision (`B`), or `preamble` for text before the first marker.
    pub version: String,
    pub description: String,
    pub text: String,
    pub first_line: usize,
}

/// True when the file holds Alembic's offline markers.
pub fn is_offline_sql(text: &str) -> bool {
    text.lines().any(|l| marker(l).is_some())
}

fn marker(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix("-- Running upgrade")?;
    let (from, to) = rest.split_once("->")?;
    let to = to.trim().to_string();
    (!to.is_empty()).then(|| (format!("{} -> {}", from.trim(), to), to))
}

/// Splits the file into revisions; a non-empty preamble (the `alembic_version`
/// table set-up) becomes its own unit so its statements are still classified.
pub fn revisions(text: &str, preamble_name: &str) -> Vec<Revision> {
    let mut out = vec![Revision {
        version: preamble_name.to_string(),
        description: "alembic set-up".into(),
        text: String::new(),
        first_line: 1,
    }];
    for (n, line) in text.lines().enumerate() {
        if let Some((desc, to)) = marker(line) {
            out.push(Revision {
                version: to,
                description: desc,
                text: String::new(),
                first_line: n + 2,
            });
        } else if let Some(r) = out.last_mut() {
            r.text.push_str(line);
            r.text.push('\n');
        }
    }
    if out[0].text.trim().is_empty() || only_comments(&out[0].text) {
        out.remove(0);
    }
    out
}

fn only_comments(t: &str) -> bool {
    t.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_running_upgrade() {
        let t = "BEGIN;\nCREATE TABLE alembic_version (v varchar(32));\n-- Running upgrade  -> a1\nCREATE TABLE x (id int);\n-- Running upgrade a1 -> b2\nALTER TABLE x ADD y int;\nCOMMIT;\n";
        assert!(is_offline_sql(t));
        let r = revisions(t, "pre");
        assert_eq!(
            r.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(),
            vec!["pre", "a1", "b2"]
        );
        assert_eq!(r[2].first_line, 6);
        assert_eq!(r[2].description, "a1 -> b2");
    }
}
