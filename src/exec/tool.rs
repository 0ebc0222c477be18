//! What the external-tool drivers (gh-ost, pt-osc) share: the single ALTER a
//! migration must be, connection facts from the target's URLs, starting the
//! tool detached with its output in files of the run directory, following
//! those files, and telling whether a recorded pid is still the tool.

use crate::migrate::Migration;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The one `ALTER TABLE` a tool-run migration consists of.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolAlter {
    /// Schema (from the statement, else the DSN's database).
    pub schema: String,
    /// Table.
    pub table: String,
    /// What follows `ALTER TABLE <name>`, without the final `;`.
    pub alter: String,
    /// `file:line` of the statement.
    pub at: String,
}

/// The ALTER of `m`, or why `tool` cannot run it (naming file and line).
pub fn single_alter(m: &Migration, default_schema: &str, tool: &str) -> Result<ToolAlter, String> {
    let file = m.path.display().to_string();
    let stmts: Vec<_> = m
        .statements
        .iter()
        .filter(|s| !s.sql.trim().trim_end_matches(';').trim().is_empty())
        .collect();
    let [s] = stmts.as_slice() else {
        return Err(format!(
            "{file}: {tool} runs exactly one ALTER TABLE per migration; this one has {} statements (split it, or use executor=native)",
            stmts.len()
        ));
    };
    let at = format!("{file}:{}", s.line);
    let re = regex::Regex::new(
        r"(?is)^\s*ALTER\s+(?:ONLINE\s+)?TABLE\s+((?:`[^`]+`|[A-Za-z0-9_$]+)(?:\s*\.\s*(?:`[^`]+`|[A-Za-z0-9_$]+))?)\s+(.+?)\s*;?\s*$",
    )
    .map_err(|e| e.to_string())?;
    let c = re
        .captures(&s.sql)
        .ok_or_else(|| format!("{at}: {tool} runs only ALTER TABLE statements"))?;
    let (schema, table) = super::leftovers::split_name(&c[1], default_schema);
    if schema.is_empty() {
        return Err(format!(
            "{at}: no database: qualify the table or put one in the target's URL"
        ));
    }
    Ok(ToolAlter {
        schema,
        table,
        alter: c[2].to_string(),
        at,
    })
}

/// Per-migration tool settings from the directive (`-- cutover: executor=gh-ost
/// chunk-size=500 max-lag=2s postpone-cut-over=true`); the run's tuned values win.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DirectiveSettings {
    /// Initial rows per chunk.
    pub chunk_size: Option<u32>,
    /// Max lag, ms (`1500`, `1500ms`, `2s`).
    pub max_lag_millis: Option<u64>,
    /// Wait for a DBA before the cut-over.
    pub postpone_cut_over: bool,
}

/// Reads the directive's tool options.
pub fn directive_settings(m: &Migration) -> DirectiveSettings {
    let o = &m.directives.options;
    let lag = o.get("max-lag").and_then(|v| {
        let v = v.trim();
        if let Some(ms) = v.strip_suffix("ms") {
            ms.trim().parse().ok()
        } else if let Some(s) = v.strip_suffix('s') {
            s.trim().parse::<f64>().ok().map(|s| (s * 1000.0) as u64)
        } else {
            v.parse().ok()
        }
    });
    DirectiveSettings {
        chunk_size: o.get("chunk-size").and_then(|v| v.trim().parse().ok()),
        max_lag_millis: lag,
        postpone_cut_over: o
            .get("postpone-cut-over")
            .is_some_and(|v| matches!(v.trim(), "true" | "yes" | "1")),
    }
}

/// Connection facts from a `mysql://user:pass@host:port/db` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct MyEndpoint {
    /// Host (never `localhost`: DBD::mysql would use the default socket).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
    /// Database, when the URL names one.
    pub database: Option<String>,
}

impl MyEndpoint {
    /// Parses a URL (after `${VAR}` interpolation).
    pub fn parse(url: &str) -> Result<MyEndpoint, String> {
        let o = mysql_async::Opts::from_url(url).map_err(|e| format!("bad MySQL URL: {e}"))?;
        let host = match o.ip_or_hostname().to_string() {
            h if h == "localhost" => "127.0.0.1".to_string(),
            h => h,
        };
        Ok(MyEndpoint {
            host,
            port: o.tcp_port(),
            user: o.user().unwrap_or("root").to_string(),
            password: o.pass().unwrap_or("").to_string(),
            database: o.db_name().map(str::to_string),
        })
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Writes a file only the owner can read (credentials for the tool).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Files of one tool run in the run directory.
#[derive(Debug, Clone)]
pub struct ToolFiles {
    /// stdout.
    pub out: PathBuf,
    /// stderr.
    pub err: PathBuf,
    /// The tool's pid.
    pub pid: PathBuf,
}

impl ToolFiles {
    /// `<dir>/<stem>.{out,err,pid}`.
    pub fn new(dir: &Path, stem: &str) -> ToolFiles {
        ToolFiles {
            out: dir.join(format!("{stem}.out")),
            err: dir.join(format!("{stem}.err")),
            pid: dir.join(format!("{stem}.pid")),
        }
    }
}

/// Starts `program` in its own process group (a terminal's Ctrl-C or the
/// supervisor's death never reaches it) with stdout/stderr appended to files,
/// never to pipes: a tool that loses its reader dies of SIGPIPE.
pub fn spawn_detached(
    program: &Path,
    args: &[String],
    files: &ToolFiles,
) -> std::io::Result<tokio::process::Child> {
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(open(&files.out)?)
        .stderr(open(&files.err)?)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()?;
    if let Some(pid) = child.id() {
        std::fs::write(&files.pid, pid.to_string())?;
    }
    Ok(child)
}

/// Whether `pid` is alive and its command line mentions `needle` (a pid reused
/// by another program does not count). Zombies count as dead.
pub fn alive(pid: u32, needle: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("X");
    if matches!(state, "Z" | "X") {
        return false;
    }
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmd).contains(needle)
}

/// The pid a run recorded, if any.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Sends `signal` to the process group led by `pid`.
pub fn signal_group(pid: u32, signal: rustix::process::Signal) -> std::io::Result<()> {
    let pid =
        rustix::process::Pid::from_raw(pid as i32).ok_or_else(|| std::io::Error::other("pid 0"))?;
    rustix::process::kill_process_group(pid, signal).map_err(std::io::Error::from)
}

/// Follows a file that another process appends to: each call returns the
/// complete lines written since the last one.
#[derive(Debug)]
pub struct Follow {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Follow {
    /// From the start of `path`.
    pub fn new(path: &Path) -> Follow {
        Follow {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
        }
    }

    /// New complete lines (none when the file is missing).
    pub fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut out: Vec<String> = self.partial.split('\n').map(str::to_string).collect();
        self.partial = out.pop().unwrap_or_default();
        out.into_iter()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    }
}

/// The tool binary: `env` if set, else `name` on PATH.
pub fn binary(env: &str, name: &str) -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var(env)
        && !p.is_empty()
    {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} is not installed (not on PATH, and {env} is not set)"))
}

/// What recovery reports when the tool's process is gone: not running, and
/// what it left behind (the run is then Interrupted with these listed).
pub fn gone(tool: &str, left: &[super::Leftover]) -> super::ExecStatus {
    let names: Vec<&str> = left.iter().map(|l| l.name.as_str()).collect();
    let what = if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    };
    super::ExecStatus {
        phase: super::ExecPhase::NotRunning,
        progress: Some(super::Progress {
            detail: Some(format!("{tool} is gone; left behind: {what}")),
            ..super::Progress::default()
        }),
        at: chrono::Utc::now(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_gone_tool_lists_what_it_left() {
        let left = vec![super::super::Leftover {
            kind: "table".into(),
            name: "_orders_gho".into(),
            cleanup: None,
        }];
        let st = gone("gh-ost", &left);
        assert_eq!(st.phase, super::super::ExecPhase::NotRunning);
        let detail = st.progress.and_then(|p| p.detail).unwrap_or_default();
        assert_eq!(detail, "gh-ost is gone; left behind: _orders_gho");
        let st = gone("pt-osc", &[]);
        assert!(
            st.progress
                .and_then(|p| p.detail)
                .unwrap_or_default()
                .ends_with("nothing")
        );
    }

    use super::*;
    use crate::migrate::{LoadOptions, load_paths};

    fn migration(sql: &str) -> Migration {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = dir.path().join("V3__t.sql");
        std::fs::write(&f, sql).unwrap_or_else(|e| panic!("{e}"));
        load_paths(
            &[f],
            &LoadOptions {
                engine: Some(crate::model::Engine::Mysql),
                format: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0)
    }

    #[test]
    fn one_alter_per_migration() {
        let a = single_alter(
            &migration("-- cutover: executor=gh-ost\nALTER TABLE `shop`.orders ADD COLUMN c INT NULL, ADD KEY k (c);\n"),
            "test",
            "gh-ost",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.schema.as_str(), a.table.as_str()), ("shop", "orders"));
        assert_eq!(a.alter, "ADD COLUMN c INT NULL, ADD KEY k (c)");
        assert!(a.at.ends_with("V3__t.sql:2"), "{}", a.at);

        let e = single_alter(
            &migration("ALTER TABLE t ADD c INT;\nALTER TABLE t ADD d INT;\n"),
            "test",
            "gh-ost",
        )
        .unwrap_err();
        assert!(e.contains("V3__t.sql") && e.contains("2 statements"), "{e}");
        let e =
            single_alter(&migration("CREATE INDEX i ON t (c);\n"), "test", "pt-osc").unwrap_err();
        assert!(
            e.contains("V3__t.sql:1") && e.contains("only ALTER TABLE"),
            "{e}"
        );
    }

    #[test]
    fn endpoints_avoid_localhost_and_follow_reads_whole_lines() {
        let e = MyEndpoint::parse("mysql://dba:dba@localhost:13307/test")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.addr(), "127.0.0.1:13307");
        assert_eq!(e.database.as_deref(), Some("test"));

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("x.out");
        let mut f = Follow::new(&p);
        assert!(f.lines().is_empty());
        std::fs::write(&p, "a\nb").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.lines(), vec!["a".to_string()]);
        std::fs::write(&p, "a\nbc\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.lines(), vec!["bc".to_string()]);
    }
}
