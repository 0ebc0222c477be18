//! Identifier normalisation: names are matched as the engine resolves them.
//!
//! PostgreSQL folds unquoted identifiers to lower case; MySQL/MariaDB table names
//! are kept as written (case-sensitive on Linux). Quotes are removed either way.

use crate::model::Engine;
use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

/// One identifier, normalised for `engine`.
pub fn norm_ident(i: &Ident, engine: Engine) -> String {
    fold(&i.value, i.quote_style.is_some(), engine)
}

/// A possibly qualified name, normalised part by part and joined with `.`.
pub fn norm_name(n: &ObjectName, engine: Engine) -> String {
    n.0.iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => norm_ident(i, engine),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Folds one identifier's value.
pub fn fold(value: &str, quoted: bool, engine: Engine) -> String {
    if quoted || engine == Engine::Mysql {
        value.to_string()
    } else {
        value.to_lowercase()
    }
}

/// Normalises a name as a user writes it in a stats file or config
/// (`orders`, `public.orders`, `"Orders"`, `` `orders` ``).
pub fn norm_user_name(s: &str, engine: Engine) -> String {
    split_qualified(s)
        .into_iter()
        .map(|(part, quoted)| fold(&part, quoted, engine))
        .collect::<Vec<_>>()
        .join(".")
}

fn split_qualified(s: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut quoted = false;
    for c in s.trim().chars() {
        match (quote, c) {
            (None, '"' | '`') => {
                quote = Some(c);
                quoted = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, '.') => {
                out.push((std::mem::take(&mut cur), quoted));
                quoted = false;
            }
            (_, c) => cur.push(c),
        }
    }
    out.push((cur, quoted));
    out
}

/// The unqualified last part of a normalised name.
pub fn base_name(n: &str) -> &str {
    n.rsplit('.').next().unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_like_the_engine() {
        assert_eq!(norm_user_name("Orders", Engine::Postgres), "orders");
        assert_eq!(norm_user_name("\"Orders\"", Engine::Postgres), "Orders");
        assert_eq!(
            norm_user_name("Public.\"Orders\"", Engine::Postgres),
            "public.Orders"
        );
        assert_eq!(norm_user_name("`Orders`", Engine::Mysql), "Orders");
        assert_eq!(base_name("public.orders"), "orders");
    }
}
