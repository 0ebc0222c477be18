//! The supervisor's side of the control socket.

use super::SupervisorError;
use super::peer::{current_uid, user_name};
use super::protocol::{ClientMsg, ServerMsg};
use crate::policy::{Actor, Surface};
use crate::run::CommandEnvelope;
use crate::run::core::{Reply, Request};
use crate::run::fanout::Published;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The reply to a command that reached the socket after the run core had
/// stopped (the run ended while it was on its way).
pub const RUN_ENDED: &str = "the run has ended";

/// Binds the socket with owner-only permissions, replacing a stale one
/// (left by a killed supervisor) but never a live one.
pub fn bind(path: &Path) -> Result<UnixListener, SupervisorError> {
    let io = |what, source| SupervisorError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SupervisorError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(|e| io("removing stale socket", e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| io("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("securing", e))?;
    Ok(listener)
}

/// Takes Slack interactions for this run that another supervisor's relay
/// received ([`ClientMsg::SlackInteraction`]): the supervisor's own relay.
pub trait ForwardedInteractions: Send + Sync {
    /// `Ok` when this supervisor's relay owns the interaction; it is then
    /// handled in the background exactly as if Slack had delivered it here.
    /// `Err` says why not (another run of that id, no relay).
    fn take(&self, payload: serde_json::Value, received_by_run: &str) -> Result<(), String>;
}

/// Whether a peer may forward Slack interactions: only the supervisor's own
/// user. A forwarded payload is trusted as Slack's word (who clicked), and a
/// group member sharing the socket (`local_group`) must not be able to click
/// in someone else's name.
pub fn forward_allowed(peer_uid: u32, own_uid: u32) -> Result<(), String> {
    if peer_uid == own_uid {
        Ok(())
    } else {
        Err(format!(
            "forwarded Slack interactions are accepted only from the supervisor's own user (uid {own_uid}), not from {} (uid {peer_uid})",
            user_name(peer_uid)
        ))
    }
}

/// Serves clients until `shutdown`.
pub async fn serve(
    listener: UnixListener,
    core: mpsc::Sender<Request>,
    shutdown: CancellationToken,
) {
    serve_with(listener, core, shutdown, false, None).await
}

/// Serves clients until `shutdown`. `service`: the run was opened by
/// `cutover serve`, whose relayed connections (same uid as this process)
/// may name their client's uid first ([`ClientMsg::OnBehalf`]).
/// `forwarded`: the run's Slack relay, taking interactions other relays
/// received (without it they are answered "no Slack relay here").
pub async fn serve_with(
    listener: UnixListener,
    core: mpsc::Sender<Request>,
    shutdown: CancellationToken,
    service: bool,
    forwarded: Option<Arc<dyn ForwardedInteractions>>,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            conn = listener.accept() => {
                let Ok((stream, _)) = conn else { continue };
                tokio::spawn(connection(stream, core.clone(), shutdown.clone(), service, forwarded.clone()));
            }
        }
    }
}

/// Whether a connection from `peer` may speak for another user: only in a
/// service-opened run, only from this process's own uid (the service; the
/// run directory and socket are its alone), and only as its first message.
pub fn may_speak_for_others(service: bool, peer: u32, own: u32, first: bool) -> bool {
    service && first && peer == own
}

async fn connection(
    stream: UnixStream,
    core: mpsc::Sender<Request>,
    shutdown: CancellationToken,
    service: bool,
    forwarded: Option<Arc<dyn ForwardedInteractions>>,
) {
    let peer = match stream.peer_cred() {
        Ok(c) => c.uid(),
        Err(_) => return,
    };
    let mut user = user_name(peer);
    // Whom the connection speaks for: the peer, or the client a service
    // relays for (`OnBehalf`). Forwarded Slack payloads are taken only from
    // this process's own user speaking for itself: the service relays its
    // clients' lines verbatim, and its peer uid is the supervisor's.
    let mut acting = peer;
    let mut first = true;
    // Streams this connection subscribed to; cut when the peer is refused.
    let mut streams = Vec::new();
    let (read, mut write) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<ServerMsg>(256);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let Ok(mut line) = serde_json::to_string(&m) else {
                continue;
            };
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(read).lines();
    loop {
        let line = tokio::select! {
            _ = shutdown.cancelled() => break,
            l = lines.next_line() => match l {
                Ok(Some(l)) => l,
                _ => break,
            },
        };
        let msg: ClientMsg = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                let _ = out_tx
                    .send(ServerMsg::Error {
                        message: e.to_string(),
                    })
                    .await;
                continue;
            }
        };
        let was_first = std::mem::replace(&mut first, false);
        match msg {
            ClientMsg::OnBehalf { uid } => {
                if !may_speak_for_others(service, peer, super::peer::current_uid(), was_first) {
                    let _ = out_tx
                        .send(ServerMsg::Error {
                            message: format!(
                                "{user} may not speak for another user on this socket"
                            ),
                        })
                        .await;
                    streams.iter().for_each(tokio::task::JoinHandle::abort);
                    break;
                }
                user = user_name(uid);
                acting = uid;
            }
            ClientMsg::SlackInteraction {
                payload,
                received_by_run,
            } => {
                let answer =
                    forward_allowed(acting, current_uid()).and_then(|()| match &forwarded {
                        Some(f) => f.take(payload, &received_by_run),
                        None => Err("this supervisor runs no Slack relay".into()),
                    });
                if let Err(why) = &answer {
                    eprintln!("cutover: forwarded Slack interaction not taken: {why}");
                }
                // Taken: its outcome is the relay's business (it answers the
                // clicker and records the decision in this run's trail).
                let reply = match answer {
                    Ok(()) => Reply::Accepted { seqs: Vec::new() },
                    Err(reason) => Reply::Refused { reason },
                };
                let _ = out_tx.send(ServerMsg::Reply { reply }).await;
            }
            ClientMsg::Command {
                surface,
                command,
                origin,
            } => {
                // Local clients are the console or the CLI, whatever they claim.
                let surface = if surface == Surface::Console {
                    Surface::Console
                } else {
                    Surface::Cli
                };
                let mut env = CommandEnvelope::new(Actor::local(user.clone()), surface, command);
                env.origin = origin;
                let (tx, rx) = oneshot::channel();
                let reply = if core.send(Request::Command(env, tx)).await.is_ok() {
                    rx.await.unwrap_or(Reply::Error {
                        message: RUN_ENDED.into(),
                    })
                } else {
                    Reply::Error {
                        message: RUN_ENDED.into(),
                    }
                };
                let _ = out_tx.send(ServerMsg::Reply { reply }).await;
            }
            ClientMsg::Subscribe { capacity, history } => {
                let (tx, rx) = oneshot::channel();
                if core
                    .send(Request::Attach {
                        capacity,
                        reply: tx,
                    })
                    .await
                    .is_err()
                {
                    let _ = out_tx.send(ServerMsg::End).await;
                    continue;
                }
                let Ok((state, backlog, mut sub)) = rx.await else {
                    let _ = out_tx.send(ServerMsg::End).await;
                    continue;
                };
                let out = out_tx.clone();
                streams.push(tokio::spawn(async move {
                    let _ = out
                        .send(ServerMsg::State {
                            state: Box::new(state),
                        })
                        .await;
                    if history {
                        let _ = out
                            .send(ServerMsg::History {
                                backlog: Box::new(backlog),
                            })
                            .await;
                    }
                    while let Some(p) = sub.recv().await {
                        let m = match p {
                            Published::Event { record, anchor } => ServerMsg::Event {
                                record: Box::new(record),
                                anchor,
                            },
                            Published::Sample(s) => ServerMsg::Sample {
                                sample: Box::new(s),
                            },
                            Published::Gap { missed_events } => ServerMsg::Gap { missed_events },
                        };
                        if out.send(m).await.is_err() {
                            return;
                        }
                    }
                    let _ = out.send(ServerMsg::End).await;
                }));
            }
        }
    }
    drop(out_tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_service_names_another_user_and_only_first() {
        // The service (same uid as the supervisor) on a run it opened, first message.
        assert!(may_speak_for_others(true, 990, 990, true));
        // A requester who owns a single-user run: never.
        assert!(!may_speak_for_others(false, 1000, 1000, true));
        // Another uid, even on a service run: never.
        assert!(!may_speak_for_others(true, 1001, 990, true));
        // After the first message (a client behind the relay trying again): never.
        assert!(!may_speak_for_others(true, 990, 990, false));
    }

    #[test]
    fn only_the_supervisors_own_user_may_forward_slack_interactions() {
        assert!(forward_allowed(1000, 1000).is_ok());
        let e = forward_allowed(1001, 1000).err().unwrap_or_default();
        assert!(e.contains("only from the supervisor's own user"), "{e}");
        assert!(forward_allowed(0, 1000).is_err(), "not even root's word");
    }
}
