//! Socket Mode (spec §9): clicks without a public URL.
//!
//! `apps.connections.open` (app-level token) → WebSocket → `hello`; every
//! envelope is acknowledged at once — before any work, with an errors
//! payload only for a modal whose typed input is wrong — and the work runs
//! in its own task. Duplicates are dropped by envelope id (and by click in
//! [`Interactions`]). On `disconnect` the new link is opened and greeted
//! before the old one is closed; `link_disabled` stops the client. A link
//! that is silent for [`DEAD_AFTER`] despite pings is replaced. Reconnects
//! back off exponentially (1 s … 30 s).

use super::api::{SlackApi, methods};
use super::interact::Interactions;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How often the client pings.
pub const PING_EVERY: Duration = Duration::from_secs(10);
/// Silence after which a link is dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(40);
/// Longest reconnect backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

type Link = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why Socket Mode stopped.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Socket Mode was turned off for the app (`link_disabled`), or the token is bad.
    #[error("Socket Mode stopped: {0}")]
    Fatal(String),
}

async fn open(api: &dyn SlackApi) -> Result<Link, String> {
    let v = api
        .call(methods::CONNECTIONS_OPEN, json!({}))
        .await
        .map_err(|e| e.to_string())?;
    let url = v["url"].as_str().ok_or("apps.connections.open: no url")?;
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    // The first frame is `hello`.
    let hello = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| "no hello within 10 s".to_string())?;
    match hello {
        Some(Ok(Ws::Text(t)))
            if serde_json::from_str::<Value>(&t).is_ok_and(|v| v["type"] == "hello") =>
        {
            Ok(ws)
        }
        other => Err(format!("expected hello, got {other:?}")),
    }
}

fn fatal_open(e: &str) -> bool {
    [
        "invalid_auth",
        "not_allowed_token_type",
        "missing_args",
        "no app-level token",
        "forbidden_team",
        "token_revoked",
    ]
    .iter()
    .any(|c| e.contains(c))
}

/// The wait before opening a replacement link after a `disconnect`, given
/// the disconnects of the last minute (this one included): 1 s, then
/// doubling with each further one, up to [`MAX_BACKOFF`]. A Slack that
/// answers every ack with `disconnect` must not get one open per second.
pub fn reconnect_delay(disconnects_last_minute: usize) -> Duration {
    let n = disconnects_last_minute.clamp(1, 6) as u32;
    (Duration::from_secs(1) * 2u32.pow(n - 1)).min(MAX_BACKOFF)
}

/// Runs until `shutdown` or a fatal error.
pub async fn run(
    api: Arc<dyn SlackApi>,
    handler: Arc<Interactions>,
    shutdown: CancellationToken,
) -> Result<(), SocketError> {
    let mut backoff = Duration::from_secs(1);
    let mut link: Option<Link> = None;
    let mut disconnects: std::collections::VecDeque<Instant> = std::collections::VecDeque::new();
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let mut ws = match link.take() {
            Some(l) => l,
            None => match open(api.as_ref()).await {
                Ok(l) => {
                    backoff = Duration::from_secs(1);
                    l
                }
                Err(e) if fatal_open(&e) => return Err(SocketError::Fatal(e)),
                Err(e) => {
                    eprintln!(
                        "cutover: Socket Mode: {e}; retrying in {}s",
                        backoff.as_secs()
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        // The replacement link, opened while this one still serves envelopes.
        let mut replacing: Option<futures_util::future::BoxFuture<'static, Result<Link, String>>> =
            None;
        // Serve this link until it must be replaced.
        let next: Option<Link> = loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
                new = async {
                    match replacing.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                } => {
                    match new {
                        Ok(new) => break Some(new),
                        Err(e) => { eprintln!("cutover: Socket Mode reconnect: {e}"); break None; }
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > DEAD_AFTER {
                        eprintln!("cutover: Socket Mode link silent for {}s; reconnecting", DEAD_AFTER.as_secs());
                        break None;
                    }
                    if ws.send(Ws::Ping(Vec::new().into())).await.is_err() {
                        break None;
                    }
                }
                frame = ws.next() => {
                    last_heard = Instant::now();
                    let text = match frame {
                        Some(Ok(Ws::Text(t))) => t,
                        Some(Ok(Ws::Ping(p))) => { let _ = ws.send(Ws::Pong(p)).await; continue; }
                        Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => break None,
                        Some(Ok(_)) => continue,
                    };
                    let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                    match v["type"].as_str() {
                        Some("disconnect") => {
                            if v["reason"] == "link_disabled" {
                                let _ = ws.close(None).await;
                                return Err(SocketError::Fatal("link_disabled: Socket Mode was turned off for the app".into()));
                            }
                            // Open the new link before closing this one, and keep
                            // acking on this one meanwhile (at most one open per second).
                            if replacing.is_none() {
                                let now = Instant::now();
                                disconnects.push_back(now);
                                while disconnects.front().is_some_and(|t| now - *t > Duration::from_secs(60)) {
                                    disconnects.pop_front();
                                }
                                let delay = reconnect_delay(disconnects.len());
                                let api = api.clone();
                                replacing = Some(Box::pin(async move {
                                    tokio::time::sleep(delay).await;
                                    open(api.as_ref()).await
                                }));
                            }
                        }
                        Some("hello") => {}
                        _ => {
                            let Some(id) = v["envelope_id"].as_str() else { continue };
                            let payload = v["payload"].clone();
                            let mut ack = json!({"envelope_id": id});
                            if v["accepts_response_payload"] == true
                                && let Some(p) = handler.ack_payload(&payload)
                            {
                                ack["payload"] = p;
                            }
                            // Ack first; the work happens in its own task.
                            if ws.send(Ws::Text(ack.to_string().into())).await.is_err() {
                                break None;
                            }
                            if v["type"] == "interactive" {
                                let h = handler.clone();
                                let env = id.to_string();
                                tokio::spawn(async move { h.process(&payload, Some(&env)).await });
                            }
                        }
                    }
                }
            }
        };
        let _ = ws.close(None).await;
        link = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_disconnects_back_off() {
        let d: Vec<u64> = (1..=8).map(|n| reconnect_delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(reconnect_delay(0), Duration::from_secs(1));
    }
}
