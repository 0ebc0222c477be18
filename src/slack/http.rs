//! `cutover relay serve --listen ADDR`: the HTTP endpoint for workspaces
//! that use request URLs. A deliberately small HTTP/1.1 server (one POST per
//! connection): the signature is checked on the raw body before anything is
//! parsed; the answer goes out before the work starts.

use super::interact::Interactions;
use super::signing::Verifier;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Largest accepted body.
const MAX_BODY: usize = 1 << 20;

/// Unix seconds now, for the signature window.
pub type UnixClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Limits of the endpoint. Slack sends a whole request at once; anything
/// slower or more numerous is not Slack.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time allowed to receive a whole request (head and body).
    pub read_timeout: Duration,
    /// Connections served at once; beyond it the accept loop waits (the
    /// kernel's backlog holds the rest) instead of accepting more.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            read_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// Counters of the endpoint (for tests and the benchmark).
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Turns of the accept loop.
    pub loop_turns: AtomicU64,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: AtomicU64,
    /// Connections closed because the request did not arrive in time.
    pub timed_out: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

/// Longest pause after failing `accept` calls.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    verifier: Arc<Verifier>,
    handler: Arc<Interactions>,
    shutdown: CancellationToken,
) {
    let clock: UnixClock = Arc::new(|| chrono::Utc::now().timestamp());
    serve_with(
        listener,
        verifier,
        handler,
        shutdown,
        clock,
        ServeOptions::default(),
        Arc::default(),
    )
    .await
}

/// [`serve`] with the signature window checked against `clock` (tests use
/// the spec's fixed vector timestamps).
pub async fn serve_with_clock(
    listener: TcpListener,
    verifier: Arc<Verifier>,
    handler: Arc<Interactions>,
    shutdown: CancellationToken,
    clock: UnixClock,
) {
    serve_with(
        listener,
        verifier,
        handler,
        shutdown,
        clock,
        ServeOptions::default(),
        Arc::default(),
    )
    .await
}

/// [`serve`] with explicit limits, counting into `stats`.
pub async fn serve_with(
    listener: TcpListener,
    verifier: Arc<Verifier>,
    handler: Arc<Interactions>,
    shutdown: CancellationToken,
    clock: UnixClock,
    opts: ServeOptions,
    stats: Arc<ServeStats>,
) {
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let mut backoff = Duration::from_millis(10);
    loop {
        stats.loop_turns.fetch_add(1, Ordering::Relaxed);
        // Wait for room first: at the limit the loop sleeps, it does not spin.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = listener.accept() => c,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(10);
                stream
            }
            Err(e) => {
                // Out of descriptors (EMFILE) fails at once and again: back
                // off instead of spinning a core until a descriptor frees up.
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                if stats.accept_errors.load(Ordering::Relaxed) == 1 {
                    eprintln!("cutover: relay serve: accept failed: {e} (backing off)");
                }
                drop(permit);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let (v, h, c, st) = (
            verifier.clone(),
            handler.clone(),
            clock.clone(),
            stats.clone(),
        );
        tokio::spawn(async move {
            connection(stream, v, h, c, opts.read_timeout, &st).await;
            st.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Decodes `application/x-www-form-urlencoded` values.
pub fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            let v = v.replace('+', " ");
            let bytes = v.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%'
                    && let Some(b) = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    })
}

async fn respond(s: &mut TcpStream, status: &str, body: &str) {
    let ct = if body.is_empty() {
        "text/plain"
    } else {
        "application/json"
    };
    let r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(r.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn connection(
    mut s: TcpStream,
    verifier: Arc<Verifier>,
    handler: Arc<Interactions>,
    clock: UnixClock,
    read_timeout: Duration,
    stats: &ServeStats,
) {
    let request = tokio::time::timeout(read_timeout, read_request(&mut s)).await;
    let (buf, head_end, len) = match request {
        Ok(Ok(r)) => r,
        Ok(Err(Some(status))) => return respond(&mut s, status, "").await,
        Ok(Err(None)) => return,
        Err(_) => {
            stats.timed_out.fetch_add(1, Ordering::Relaxed);
            return respond(&mut s, "408 Request Timeout", "").await;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let body = &buf[head_end..head_end + len];
    let now = clock();
    if let Err(e) = verifier.verify(
        header("x-slack-request-timestamp").as_deref(),
        header("x-slack-signature").as_deref(),
        body,
        now,
    ) {
        eprintln!("cutover: refused an unsigned or stale Slack request: {e}");
        return respond(&mut s, "401 Unauthorized", "").await;
    }
    let text = String::from_utf8_lossy(body).into_owned();
    let Some(payload) =
        form_value(&text, "payload").and_then(|p| serde_json::from_str::<Value>(&p).ok())
    else {
        return respond(&mut s, "400 Bad Request", "").await;
    };
    let ack = handler.ack_payload(&payload);
    respond(
        &mut s,
        "200 OK",
        &ack.map(|a| a.to_string()).unwrap_or_default(),
    )
    .await;
    handler.process(&payload, None).await;
}

/// Reads one request: (bytes, end of head, body length); `Err(Some(status))`
/// to answer with, `Err(None)` when the peer went away.
async fn read_request(s: &mut TcpStream) -> Result<(Vec<u8>, usize, usize), Option<&'static str>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(Some("431 Request Header Fields Too Large"));
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    if !head.starts_with("POST ") {
        return Err(Some("405 Method Not Allowed"));
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(Some("413 Payload Too Large"));
    }
    while buf.len() < head_end + len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok((buf, head_end, len))
}
