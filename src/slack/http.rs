//! `cutover relay serve --listen ADDR`: the HTTP endpoint for workspaces
//! that use request URLs. A deliberately small HTTP/1.1 server (one POST per
//! connection): the signature is checked on the raw body before anything is
//! parsed; the answer goes out before the work starts.

use super::interact::Interactions;
use super::signing::Verifier;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Largest accepted body.
const MAX_BODY: usize = 1 << 20;

/// Unix seconds now, for the signature window.
pub type UnixClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    verifier: Arc<Verifier>,
    handler: Arc<Interactions>,
    shutdown: CancellationToken,
) {
    let clock: UnixClock = Arc::new(|| chrono::Utc::now().timestamp());
    serve_with_clock(listener, verifier, handler, shutdown, clock).await
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            c = listener.accept() => {
                let Ok((stream, _)) = c else { continue };
                tokio::spawn(connection(stream, verifier.clone(), handler.clone(), clock.clone()));
            }
        }
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
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 64 * 1024 {
            return respond(&mut s, "431 Request Header Fields Too Large", "").await;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
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
    if !head.starts_with("POST ") {
        return respond(&mut s, "405 Method Not Allowed", "").await;
    }
    let len: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return respond(&mut s, "413 Payload Too Large", "").await;
    }
    while buf.len() < head_end + len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
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
