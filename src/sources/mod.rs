//! `[[source]]` at run time: run each query, keep the last good result (in memory and in
//! `state_dir`), and report every result to `serve`, which merges it like a reload.
//!
//! One client crate for the three databases (sqlx, without its macros): rows are read as text
//! by column name, in one read-only transaction, and converted to [`Row`]s here; checking them
//! is `settings`' job ([`Settings::with_sources`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::settings::{Row, Settings, SourceSettings};

/// A query's result (or why there is none) for `sources[index]`.
#[derive(Debug)]
pub struct Update {
    pub index: usize,
    /// The source queried: an update still queued from before a reload is for another one.
    pub source: Arc<SourceSettings>,
    pub rows: Result<Arc<Vec<Row>>, String>,
    /// Connect plus query plus reading the rows.
    pub took: Duration,
}

/// Connect, run the query in one read-only transaction, and read every row; at most the
/// source's `timeout`.
pub async fn fetch(src: &SourceSettings) -> Result<Vec<Row>, String> {
    match tokio::time::timeout(src.timeout, fetch_inner(src)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", src.timeout.as_secs())),
    }
}

/// Without the `sources` feature settings refuse `[[source]]`, so this is never reached.
#[cfg(not(feature = "sources"))]
async fn fetch_inner(_: &SourceSettings) -> Result<Vec<Row>, String> {
    Err("this mailconf was built without database sources (cargo feature `sources`)".into())
}

#[cfg(feature = "sources")]
async fn fetch_inner(src: &SourceSettings) -> Result<Vec<Row>, String> {
    use crate::settings::SourceKind;
    use sqlx::{ConnectOptions, Connection, Row as _};
    use std::str::FromStr;
    let url = src.url.read()?;
    match src.kind {
        SourceKind::Postgres => {
            let opts = sqlx::postgres::PgConnectOptions::from_str(&url)
                .map_err(|e| db_error(&e))?
                .application_name("mailconf")
                .disable_statement_logging();
            let mut conn = opts.connect().await.map_err(|e| db_error(&e))?;
            let mut tx = conn.begin().await.map_err(|e| db_error(&e))?;
            sqlx::query("SET TRANSACTION READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error(&e))?;
            let rows = sqlx::query(&src.query)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| db_error(&e))?;
            let _ = tx.rollback().await;
            let _ = conn.close().await;
            convert(&rows, |r, i| r.try_get::<Option<String>, _>(i))
        }
        SourceKind::Mysql => {
            let opts = sqlx::mysql::MySqlConnectOptions::from_str(&url)
                .map_err(|e| db_error(&e))?
                .disable_statement_logging();
            let mut conn = opts.connect().await.map_err(|e| db_error(&e))?;
            sqlx::query("SET TRANSACTION READ ONLY")
                .execute(&mut conn)
                .await
                .map_err(|e| db_error(&e))?;
            let mut tx = conn.begin().await.map_err(|e| db_error(&e))?;
            let rows = sqlx::query(&src.query)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| db_error(&e))?;
            let _ = tx.rollback().await;
            let _ = conn.close().await;
            // MySQL gives binary collations (VARBINARY, BLOB) as bytes.
            convert(&rows, |r, i| {
                r.try_get::<Option<String>, _>(i).or_else(|e| {
                    r.try_get::<Option<Vec<u8>>, _>(i)
                        .map_err(|_| e)?
                        .map(String::from_utf8)
                        .transpose()
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
                })
            })
        }
        SourceKind::Sqlite => {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
                .map_err(|e| db_error(&e))?
                .read_only(true)
                .disable_statement_logging();
            let mut conn = opts.connect().await.map_err(|e| db_error(&e))?;
            let mut tx = conn.begin().await.map_err(|e| db_error(&e))?;
            let rows = sqlx::query(&src.query)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| db_error(&e))?;
            let _ = tx.rollback().await;
            let _ = conn.close().await;
            convert(&rows, |r, i| r.try_get::<Option<String>, _>(i))
        }
    }
}

/// A database error in words, without the URL (sqlx's messages do not include it).
#[cfg(feature = "sources")]
fn db_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => format!("database: {}", d.message()),
        other => other.to_string(),
    }
}

/// Rows → [`Row`]s by column name: `domain` must be there, `provider` and `alias_of` may.
#[cfg(feature = "sources")]
fn convert<R: sqlx::Row>(
    rows: &[R],
    get: impl Fn(&R, usize) -> Result<Option<String>, sqlx::Error>,
) -> Result<Vec<Row>, String> {
    use sqlx::Column;
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let col = |name: &str| first.columns().iter().position(|c| c.name().eq_ignore_ascii_case(name));
    let domain = col("domain").ok_or("the query returns no `domain` column")?;
    let (provider, alias_of) = (col("provider"), col("alias_of"));
    Ok(rows
        .iter()
        .map(|r| {
            let mut row = Row::default();
            row.domain = row.value("domain", get(r, domain));
            if let Some(i) = provider {
                row.provider = row.value("provider", get(r, i));
            }
            if let Some(i) = alias_of {
                row.alias_of = row.value("alias_of", get(r, i));
            }
            row
        })
        .collect())
}

/// The last good result of a source, as kept in `state_dir`.
#[derive(Serialize, Deserialize)]
struct Saved {
    query: String,
    rows: Vec<Row>,
}

fn state_file(dir: &Path, src: &SourceSettings) -> PathBuf {
    dir.join(format!("source-{}.json", src.name))
}

/// Keep `rows` as the source's last good result (written aside, then renamed).
pub fn save(dir: Option<&Path>, src: &SourceSettings, rows: &[Row]) {
    let Some(dir) = dir else { return };
    let saved = Saved {
        query: src.query.clone(),
        rows: rows.to_vec(),
    };
    let path = state_file(dir, src);
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, serde_json::to_vec(&saved).unwrap_or_default()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        warn!(source = %src.name, file = %path.display(), error = %e, "cannot keep the source's result in state_dir");
    }
}

/// The source's last good result from `state_dir`, if there is one.
pub fn load(dir: Option<&Path>, src: &SourceSettings) -> Option<Vec<Row>> {
    let path = state_file(dir?, src);
    let text = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<Saved>(&text) {
        Ok(s) => {
            if s.query != src.query {
                warn!(source = %src.name, "the kept result is from a different query; serving it until the database answers");
            }
            Some(s.rows)
        }
        Err(e) => {
            warn!(source = %src.name, file = %path.display(), error = %e, "cannot read the kept result");
            None
        }
    }
}

/// Each source's rows as a start would take them: its query, or when that fails, the result
/// `state_dir` kept (`None` without one), with the error. All sources at once. Writes and
/// counts nothing: `serve` does that in [`initial`]; the commands that only read the settings
/// (`zone`, `probe --config`, `render`) use this as it is, so they see the domains `serve`
/// would serve.
pub async fn read_once(settings: &Settings) -> Vec<(Option<Vec<Row>>, Option<String>)> {
    let dir = settings.server.state_dir.clone();
    let tasks: Vec<_> = settings
        .sources
        .iter()
        .map(|src| {
            let (src, dir) = (src.clone(), dir.clone());
            tokio::spawn(async move {
                match fetch(&src).await {
                    Ok(rows) => (Some(rows), None),
                    Err(e) => {
                        let kept = tokio::task::spawn_blocking(move || load(dir.as_deref(), &src))
                            .await
                            .ok()
                            .flatten();
                        (kept, Some(e))
                    }
                }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap_or((None, Some("the query task failed".into()))));
    }
    out
}

/// Every source's first result for `serve` ([`read_once`]), counted in `/metrics` and logged;
/// a result the database gave is kept in `state_dir`.
pub async fn initial(settings: &Settings) -> Vec<(Option<Arc<Vec<Row>>>, Option<String>)> {
    let dir = settings.server.state_dir.clone();
    let mut out = Vec::with_capacity(settings.sources.len());
    for (src, (rows, error)) in settings.sources.iter().zip(read_once(settings).await) {
        let rows = rows.map(Arc::new);
        match &error {
            None => {
                let n = rows.as_ref().map_or(0, |r| r.len());
                crate::metrics::METRICS.source_ok(&src.name, n);
                info!(source = %src.name, rows = n, "source read");
                if let Some(keep) = rows.clone() {
                    let (src, dir) = (src.clone(), dir.clone());
                    let _ = tokio::task::spawn_blocking(move || save(dir.as_deref(), &src, &keep)).await;
                }
            }
            Some(e) => {
                crate::metrics::METRICS.source_failed(&src.name);
                match &rows {
                    Some(rows) => {
                        warn!(source = %src.name, error = %e, rows = rows.len(), "source unreadable: serving the result kept in state_dir")
                    }
                    None => {
                        warn!(source = %src.name, error = %e, "source unreadable and nothing kept: serving none of its domains")
                    }
                }
            }
        }
        out.push((rows, error));
    }
    out
}

/// Query every source every `refresh` (and on PostgreSQL `NOTIFY`), sending each result.
/// Dropping the handles' tasks (abort) stops them.
pub fn spawn(
    sources: &[Arc<SourceSettings>],
    tx: tokio::sync::mpsc::Sender<Update>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for (index, src) in sources.iter().enumerate() {
        let wake = Arc::new(tokio::sync::Notify::new());
        if let Some(channel) = &src.listen {
            handles.push(tokio::spawn(listen(src.clone(), channel.clone(), wake.clone())));
        }
        let (src, tx) = (src.clone(), tx.clone());
        handles.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(src.refresh) => {}
                    () = wake.notified() => {}
                }
                let t = std::time::Instant::now();
                let rows = fetch(&src).await.map(Arc::new);
                let took = t.elapsed();
                let update = Update {
                    index,
                    source: src.clone(),
                    rows,
                    took,
                };
                if tx.send(update).await.is_err() {
                    return;
                }
            }
        }));
    }
    handles
}

/// PostgreSQL `LISTEN channel`: each notification wakes the source's loop. Reconnects after
/// the source's `refresh` when the connection is lost.
#[cfg(not(feature = "sources"))]
async fn listen(_: Arc<SourceSettings>, _: String, _: Arc<tokio::sync::Notify>) {}

#[cfg(feature = "sources")]
async fn listen(src: Arc<SourceSettings>, channel: String, wake: Arc<tokio::sync::Notify>) {
    let mut failing: Option<String> = None;
    loop {
        let result: Result<(), String> = async {
            let url = src.url.read()?;
            let mut l = tokio::time::timeout(src.timeout, sqlx::postgres::PgListener::connect(&url))
                .await
                .map_err(|_| "no answer".to_string())?
                .map_err(|e| db_error(&e))?;
            l.listen(&channel).await.map_err(|e| db_error(&e))?;
            if failing.take().is_some() {
                info!(source = %src.name, %channel, "LISTEN works again");
            }
            loop {
                // try_recv: None when the connection was lost (then reconnect and refresh).
                match l.try_recv().await.map_err(|e| db_error(&e))? {
                    Some(_) => wake.notify_one(),
                    None => {
                        wake.notify_one();
                        return Err("connection lost".into());
                    }
                }
            }
        }
        .await;
        if let Err(e) = result
            && failing.as_deref() != Some(e.as_str())
        {
            warn!(source = %src.name, %channel, error = %e, "LISTEN failed; polling every refresh until it works");
            failing = Some(e);
        }
        tokio::time::sleep(src.refresh.min(Duration::from_secs(5))).await;
    }
}
