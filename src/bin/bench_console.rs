//! Benchmark (not a test): console frame render time at 200×60 with five
//! replicas and one hour of 1-second lag samples each. Target: < 2 ms/frame.
//! Run: `cargo run --release --bin bench_console`.

use chrono::{Duration, TimeZone, Utc};
use cutover::lag::{LagSample, LagSource};
use cutover::tui::keys::Ui;
use cutover::tui::{Console, KeyMap, Theme, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut c = Console::default();
    for i in 0..3600i64 {
        for r in 0..5 {
            let v = ((i + r * 97) % 300) as f64 / 100.0;
            c.lag_sample(&LagSample {
                replica: format!("replica-{r}"),
                seconds: Some(v),
                bytes: None,
                source: LagSource::Simulated,
                at: t0 + Duration::seconds(i),
                why: None,
            });
        }
    }
    c.state.phase = cutover::run::Phase::Running;
    let theme = Theme::default();
    let keys = KeyMap::default();
    let mut term = Terminal::new(TestBackend::new(200, 60))?;
    for zoom in 0..4 {
        let ui = Ui {
            zoom,
            ..Ui::default()
        };
        let frames = 200;
        let start = std::time::Instant::now();
        for _ in 0..frames {
            term.draw(|f| view::draw(f, &c, &ui, &theme, &keys))?;
        }
        let per = start.elapsed().as_secs_f64() * 1000.0 / frames as f64;
        println!(
            "200x60, 5 replicas x 3600 samples, window {:>4}s: {per:.3} ms/frame",
            cutover::tui::keys::ZOOMS[zoom]
        );
    }
    Ok(())
}
