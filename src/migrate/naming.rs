//! File-name conventions of the migration tools and version ordering.

use super::SourceFormat;
use std::cmp::Ordering;
use std::path::Path;

/// What a file's name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameInfo {
    pub format: SourceFormat,
    pub version: String,
    pub description: String,
    pub repeatable: bool,
}

/// Reads the tool conventions from a file name; `None` means "skip this file"
/// (down migrations, Flyway undo files).
pub fn classify_name(path: &Path) -> Option<NameInfo> {
    let file = path.file_name()?.to_string_lossy().to_string();
    let lower = file.to_ascii_lowercase();
    if !lower.ends_with(".sql") {
        return None;
    }
    if lower == "down.sql"
        || lower.ends_with(".down.sql")
        || file.starts_with("U")
            && file.contains("__")
            && is_flyway_version(&file[1..file.find("__").unwrap_or(1)])
    {
        return None;
    }
    let stem = &file[..file.len() - 4];
    // Flyway: V<version>__<desc>.sql, R__<desc>.sql
    if let Some(rest) = stem.strip_prefix('V')
        && let Some((ver, desc)) = rest.split_once("__")
        && is_flyway_version(ver)
    {
        return Some(NameInfo {
            format: SourceFormat::Flyway,
            version: ver.replace('_', "."),
            description: desc.replace('_', " "),
            repeatable: false,
        });
    }
    if let Some(desc) = stem.strip_prefix("R__") {
        return Some(NameInfo {
            format: SourceFormat::Flyway,
            version: format!("R__{desc}"),
            description: desc.replace('_', " "),
            repeatable: true,
        });
    }
    // Diesel: <dir>/up.sql, version from the directory name.
    if lower == "up.sql" {
        let dir = path.parent()?.file_name()?.to_string_lossy().to_string();
        let (ver, desc) = split_leading_version(&dir);
        return Some(NameInfo {
            format: SourceFormat::Diesel,
            version: ver,
            description: desc,
            repeatable: false,
        });
    }
    // golang-migrate and friends: <n>_<name>.up.sql (also `.postgres.up.sql`).
    if lower.ends_with(".up.sql") {
        let base = &stem[..stem.len() - 3];
        let (ver, desc) = split_leading_version(base);
        return Some(NameInfo {
            format: SourceFormat::GolangMigrate,
            version: ver,
            description: desc,
            repeatable: false,
        });
    }
    let (ver, desc) = split_leading_version(stem);
    Some(NameInfo {
        format: SourceFormat::Plain,
        version: ver,
        description: desc,
        repeatable: false,
    })
}

fn is_flyway_version(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '_')
        && v.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// `20190101_add_x` → (`20190101`, `add x`); names without a leading number keep
/// the whole stem as the version.
fn split_leading_version(name: &str) -> (String, String) {
    let end = name
        .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '.'))
        .unwrap_or(name.len());
    let ver = name[..end].trim_end_matches(['-', '.']);
    if ver.is_empty() || !ver.starts_with(|c: char| c.is_ascii_digit()) {
        return (
            name.to_string(),
            name.replace(['_', '-'], " ").trim().to_string(),
        );
    }
    let desc = name[end..]
        .trim_start_matches(['_', '-', '.'])
        .replace('_', " ");
    (ver.to_string(), desc)
}

/// Compares versions as the tools do: parts split on `.`, `_` or `-`, numeric parts
/// numerically (`1.10` after `1.9`), others as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let pa: Vec<&str> = a.split(['.', '_', '-']).collect();
    let pb: Vec<&str> = b.split(['.', '_', '-']).collect();
    for i in 0..pa.len().max(pb.len()) {
        // A missing part counts as 0 against a number (`1` = `1.0`).
        let x = pa
            .get(i)
            .copied()
            .unwrap_or(if pb.get(i).is_some_and(|y| is_num(y)) {
                "0"
            } else {
                ""
            });
        let y = pb
            .get(i)
            .copied()
            .unwrap_or(if pa.get(i).is_some_and(|x| is_num(x)) {
                "0"
            } else {
                ""
            });
        let ord = match (is_num(x), is_num(y)) {
            (true, true) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            _ => natural_cmp(x, y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// A version as Flyway compares it: numeric parts without leading zeros, trailing
/// zero parts dropped (`01.0` → `1`).
pub fn canonical_version(v: &str) -> String {
    let mut parts: Vec<String> = v
        .split(['.', '_'])
        .map(|p| {
            if is_num(p) {
                let t = p.trim_start_matches('0');
                if t.is_empty() { "0" } else { t }.to_string()
            } else {
                p.to_ascii_lowercase()
            }
        })
        .collect();
    while parts.len() > 1 && parts.last().is_some_and(|p| p == "0") {
        parts.pop();
    }
    parts.join(".")
}

fn is_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Orders names with embedded numbers naturally (`v2` before `v10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut ia, mut ib) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (ia.peek().copied(), ib.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na: String =
                    std::iter::from_fn(|| ia.next_if(|c| c.is_ascii_digit())).collect();
                let nb: String =
                    std::iter::from_fn(|| ib.next_if(|c| c.is_ascii_digit())).collect();
                let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                ia.next();
                ib.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn flyway_versions_are_equal_numerically() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "01"),
            ("1.2", "1.2.0"),
            ("01.02", "1.2"),
        ] {
            assert_eq!(canonical_version(a), canonical_version(b), "{a} {b}");
            assert_eq!(compare_versions(a, b), Ordering::Equal, "{a} {b}");
        }
        assert_ne!(canonical_version("1.1"), canonical_version("1.10"));
        assert_ne!(canonical_version("10"), canonical_version("1"));
    }

    #[test]
    fn flyway_versions_compare_numerically() {
        assert_eq!(compare_versions("1.10", "1.9"), Ordering::Greater);
        assert_eq!(compare_versions("1_2", "1.2"), Ordering::Equal);
        assert_eq!(compare_versions("2", "10"), Ordering::Less);
        assert_eq!(compare_versions("1.0.1", "1.0"), Ordering::Greater);
    }

    #[test]
    fn names_are_classified() {
        let n = classify_name(&PathBuf::from("db/V1_2__add_orders.sql")).unwrap();
        assert_eq!(
            (n.format, n.version.as_str(), n.description.as_str()),
            (SourceFormat::Flyway, "1.2", "add orders")
        );
        let n = classify_name(&PathBuf::from("R__views.sql")).unwrap();
        assert!(n.repeatable);
        assert!(classify_name(&PathBuf::from("m/2019-01-01-000000_x/down.sql")).is_none());
        assert!(classify_name(&PathBuf::from("1_x.down.sql")).is_none());
        assert!(classify_name(&PathBuf::from("U1__undo.sql")).is_none());
        let n = classify_name(&PathBuf::from("m/2019-11-15-182353_Add email/up.sql")).unwrap();
        assert_eq!(
            (n.format, n.version.as_str()),
            (SourceFormat::Diesel, "2019-11-15-182353")
        );
        let n = classify_name(&PathBuf::from("000080_posts_createat_id.up.sql")).unwrap();
        assert_eq!(
            (n.format, n.version.as_str()),
            (SourceFormat::GolangMigrate, "000080")
        );
        let n = classify_name(&PathBuf::from("schema.sql")).unwrap();
        assert_eq!(
            (n.format, n.version.as_str()),
            (SourceFormat::Plain, "schema")
        );
    }
}
