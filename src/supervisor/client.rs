//! The client side: `cutover attach RUN`, `cutover approve RUN`, the console.

use super::SupervisorError;
use super::protocol::{ClientMsg, ServerMsg};
use crate::policy::Surface;
use crate::run::Command;
use crate::run::core::Reply;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// A connection to a supervisor.
pub struct Client {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

fn proto(e: impl std::fmt::Display) -> SupervisorError {
    SupervisorError::Protocol(e.to_string())
}

impl Client {
    /// Connects to the socket of a run.
    pub async fn connect(path: &Path) -> Result<Client, SupervisorError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| SupervisorError::Io {
                what: "connecting to",
                path: path.to_path_buf(),
                source,
            })?;
        let (read, write) = stream.into_split();
        Ok(Client {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    async fn send(&mut self, msg: &ClientMsg) -> Result<(), SupervisorError> {
        let mut line = serde_json::to_string(msg).map_err(proto)?;
        line.push('\n');
        self.write.write_all(line.as_bytes()).await.map_err(proto)
    }

    /// The next message from the supervisor; `None` when it hung up.
    pub async fn next(&mut self) -> Result<Option<ServerMsg>, SupervisorError> {
        match self.lines.next_line().await.map_err(proto)? {
            Some(l) => serde_json::from_str(&l).map(Some).map_err(proto),
            None => Ok(None),
        }
    }

    /// Speaks for the OS user `uid` from here on (`cutover serve` relaying
    /// its client; any other peer is refused and disconnected).
    pub async fn on_behalf(&mut self, uid: u32) -> Result<(), SupervisorError> {
        self.send(&ClientMsg::OnBehalf { uid }).await
    }

    /// Starts streaming state, events and samples (`cutover attach`).
    pub async fn subscribe(&mut self, capacity: usize) -> Result<(), SupervisorError> {
        self.send(&ClientMsg::Subscribe {
            capacity,
            history: false,
        })
        .await
    }

    /// Like [`Client::subscribe`], with the run's recent history first
    /// ([`ServerMsg::History`]): what a console draws its log and chart from.
    pub async fn attach(&mut self, capacity: usize) -> Result<(), SupervisorError> {
        self.send(&ClientMsg::Subscribe {
            capacity,
            history: true,
        })
        .await
    }

    /// Hands a Slack interaction that this user's other relay received to
    /// the run's supervisor ([`ClientMsg::SlackInteraction`]); `Accepted`
    /// means its relay took it.
    pub async fn forward_slack(
        &mut self,
        payload: serde_json::Value,
        received_by_run: &str,
    ) -> Result<Reply, SupervisorError> {
        self.send(&ClientMsg::SlackInteraction {
            payload,
            received_by_run: received_by_run.to_string(),
        })
        .await?;
        loop {
            match self.next().await? {
                Some(ServerMsg::Reply { reply }) => return Ok(reply),
                Some(_) => {}
                None => return Err(proto("the supervisor hung up")),
            }
        }
    }

    /// Sends a command and waits for its reply (`cutover approve`, console keys).
    /// Streamed messages that arrive first are passed to `other`.
    pub async fn command(
        &mut self,
        surface: Surface,
        command: Command,
        origin: Option<String>,
        mut other: impl FnMut(ServerMsg),
    ) -> Result<Reply, SupervisorError> {
        self.send(&ClientMsg::Command {
            surface,
            command,
            origin,
        })
        .await?;
        loop {
            match self.next().await? {
                Some(ServerMsg::Reply { reply }) => return Ok(reply),
                Some(m) => other(m),
                None => return Err(proto("the supervisor hung up")),
            }
        }
    }
}
