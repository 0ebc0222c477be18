//! Console themes: `themes/*.toml`, with the three bundled themes embedded in
//! the binary so the console looks right when the folder is missing.
//!
//! A theme only picks colours; every state and risk is also spelled out in
//! text, so no theme relies on red versus green.

use crate::model::Risk;
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::path::Path;
use std::str::FromStr;

const EMBEDDED: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

/// A theme problem, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("theme {origin}: {message}")]
pub struct ThemeError {
    /// File or theme name.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    #[serde(default)]
    bold: bool,
    colors: ColorsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColorsFile {
    text: String,
    dim: String,
    accent: String,
    border: String,
    selected_bg: String,
    low: String,
    medium: String,
    high: String,
    ok: String,
    warn: String,
    bad: String,
    threshold: String,
    replicas: Vec<String>,
}

/// Resolved colours and styles.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// Theme name.
    pub name: String,
    /// Emphasis with bold everywhere.
    pub bold: bool,
    /// Normal text.
    pub text: Color,
    /// Secondary text.
    pub dim: Color,
    /// Titles, focus.
    pub accent: Color,
    /// Pane borders.
    pub border: Color,
    /// Selected row background.
    pub selected_bg: Color,
    /// Low risk.
    pub low: Color,
    /// Medium risk.
    pub medium: Color,
    /// High risk.
    pub high: Color,
    /// Good states.
    pub ok: Color,
    /// Attention states.
    pub warn: Color,
    /// Bad states.
    pub bad: Color,
    /// The max-lag line.
    pub threshold: Color,
    /// One colour per replica line (cycled).
    pub replicas: Vec<Color>,
}

impl Default for Theme {
    fn default() -> Self {
        // The embedded dark theme is tested to parse.
        Theme::embedded("dark").unwrap_or_else(|_| Theme {
            name: "fallback".into(),
            bold: false,
            text: Color::Reset,
            dim: Color::Reset,
            accent: Color::Reset,
            border: Color::Reset,
            selected_bg: Color::Reset,
            low: Color::Reset,
            medium: Color::Reset,
            high: Color::Reset,
            ok: Color::Reset,
            warn: Color::Reset,
            bad: Color::Reset,
            threshold: Color::Reset,
            replicas: vec![Color::Reset],
        })
    }
}

fn color(origin: &str, key: &str, v: &str) -> Result<Color, ThemeError> {
    Color::from_str(v).map_err(|_| ThemeError {
        origin: origin.to_string(),
        message: format!("colors.{key} = \"{v}\" is not a colour (a name, #rrggbb or 0–255)"),
    })
}

impl Theme {
    /// Parses theme TOML (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Theme, ThemeError> {
        let f: ThemeFile = toml::from_str(text).map_err(|e| ThemeError {
            origin: format!(
                "{origin}{}",
                e.span()
                    .map(|s| format!(
                        ":{}",
                        text[..s.start.min(text.len())].matches('\n').count() + 1
                    ))
                    .unwrap_or_default()
            ),
            message: e.message().to_string(),
        })?;
        let c = &f.colors;
        let mut replicas = Vec::new();
        for (i, r) in c.replicas.iter().enumerate() {
            replicas.push(color(origin, &format!("replicas[{i}]"), r)?);
        }
        if replicas.is_empty() {
            return Err(ThemeError {
                origin: origin.into(),
                message: "colors.replicas needs at least one colour".into(),
            });
        }
        Ok(Theme {
            name: f.name,
            bold: f.bold,
            text: color(origin, "text", &c.text)?,
            dim: color(origin, "dim", &c.dim)?,
            accent: color(origin, "accent", &c.accent)?,
            border: color(origin, "border", &c.border)?,
            selected_bg: color(origin, "selected_bg", &c.selected_bg)?,
            low: color(origin, "low", &c.low)?,
            medium: color(origin, "medium", &c.medium)?,
            high: color(origin, "high", &c.high)?,
            ok: color(origin, "ok", &c.ok)?,
            warn: color(origin, "warn", &c.warn)?,
            bad: color(origin, "bad", &c.bad)?,
            threshold: color(origin, "threshold", &c.threshold)?,
            replicas,
        })
    }

    /// A bundled theme by name.
    pub fn embedded(name: &str) -> Result<Theme, ThemeError> {
        let (_, text) = EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ThemeError {
                origin: name.to_string(),
                message: format!(
                    "no such theme (bundled: {})",
                    EMBEDDED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        Theme::parse(text, &format!("{name} (embedded)"))
    }

    /// `--theme` resolution: a path to a `.toml` file, else `themes/<name>.toml`
    /// in the working directory, else the embedded theme of that name.
    pub fn load(name_or_path: &str) -> Result<Theme, ThemeError> {
        let as_path = Path::new(name_or_path);
        let candidates = if name_or_path.ends_with(".toml") {
            vec![as_path.to_path_buf()]
        } else {
            vec![Path::new("themes").join(format!("{name_or_path}.toml"))]
        };
        for p in candidates {
            if let Ok(text) = std::fs::read_to_string(&p) {
                return Theme::parse(&text, &p.display().to_string());
            }
        }
        if name_or_path.ends_with(".toml") {
            return Err(ThemeError {
                origin: name_or_path.to_string(),
                message: "cannot read the file".into(),
            });
        }
        Theme::embedded(name_or_path)
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        self.emph(Style::default().fg(self.text))
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        Style::default().fg(self.dim)
    }

    /// Titles and focus.
    pub fn accent(&self) -> Style {
        self.emph(Style::default().fg(self.accent))
    }

    /// A colour as foreground, bold when the theme asks.
    pub fn fg(&self, c: Color) -> Style {
        self.emph(Style::default().fg(c))
    }

    fn emph(&self, s: Style) -> Style {
        if self.bold {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }

    /// The colour of a risk level.
    pub fn risk(&self, r: Risk) -> Color {
        match r {
            Risk::Low => self.low,
            Risk::Medium => self.medium,
            Risk::High => self.high,
        }
    }

    /// A risk badge: reversed, bold, always with its name.
    pub fn badge(&self, c: Color) -> Style {
        Style::default()
            .fg(c)
            .add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    /// Colour for replica line `i`.
    pub fn replica(&self, i: usize) -> Color {
        self.replicas[i % self.replicas.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_themes_parse() {
        for (name, _) in EMBEDDED {
            let t = Theme::embedded(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&t.name, name);
        }
        assert!(Theme::embedded("neon").is_err());
    }

    #[test]
    fn high_contrast_does_not_use_red_or_green() {
        let t = Theme::embedded("high-contrast").unwrap_or_else(|e| panic!("{e}"));
        for c in [t.low, t.medium, t.high, t.ok, t.warn, t.bad, t.threshold] {
            assert!(
                !matches!(
                    c,
                    Color::Red | Color::Green | Color::LightRed | Color::LightGreen
                ),
                "{c:?}"
            );
        }
    }

    #[test]
    fn bad_colour_names_the_key() {
        let text = include_str!("../../themes/dark.toml")
            .replace("accent = \"cyan\"", "accent = \"cyanish\"");
        let e = Theme::parse(&text, "t.toml").unwrap_err();
        assert!(e.to_string().contains("colors.accent"), "{e}");
    }

    #[test]
    fn missing_folder_falls_back_to_embedded() {
        let t = Theme::load("light").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.name, "light");
        assert!(Theme::load("/nonexistent/x.toml").is_err());
    }
}
