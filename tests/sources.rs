//! `[[source]]`: domains read from real databases (SQLite file, PostgreSQL, MariaDB), each
//! started by the test on loopback in a temporary directory, seen through DNS and HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

const PROVIDER: &str = r#"
[provider.examplemail]
display_name = "Example Mail"
[[provider.examplemail.server]]
protocol = "imap"
host = "mail.example.net"
port = 993
security = "tls"
[[provider.examplemail.server]]
protocol = "smtp"
host = "mail.example.net"
port = 465
security = "tls"
[provider.other]
display_name = "Other Mail"
[[provider.other.server]]
protocol = "imap"
host = "imap.other.example"
port = 993
security = "tls"
[[provider.other.server]]
protocol = "smtp"
host = "smtp.other.example"
port = 465
security = "tls"

[[domain]]
name = "file.example"
provider = "examplemail"
"#;

/// PostfixAdmin's tables (the columns mailconf reads), in SQL every server here accepts.
const POSTFIXADMIN_SCHEMA: &str = "
CREATE TABLE domain (domain VARCHAR(255) PRIMARY KEY, description VARCHAR(255) NOT NULL DEFAULT '', active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE alias_domain (alias_domain VARCHAR(255) PRIMARY KEY, target_domain VARCHAR(255) NOT NULL, active BOOLEAN NOT NULL DEFAULT TRUE);
INSERT INTO domain (domain) VALUES ('ALL'), ('one.example'), ('two.example'), ('file.example');
INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('one-alias.example', 'one.example');
";

/// The README's PostfixAdmin query: active domains and alias domains.
const POSTFIXADMIN_QUERY: &str = "SELECT domain, NULL AS alias_of FROM domain WHERE active AND domain <> 'ALL' \
     UNION ALL SELECT alias_domain, target_domain FROM alias_domain WHERE active";

/// Settings with one source; `extra` goes into the `[[source]]` table.
fn settings(dir: &Path, kind: &str, url: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("url"), format!("{url}\n")).unwrap();
    let text = format!(
        "[server]\nstate_dir = \"{state}\"\n{PROVIDER}\n[[source]]\nname = \"pfa\"\nkind = \"{kind}\"\n\
         url_file = \"{url_file}\"\nquery = \"{POSTFIXADMIN_QUERY}\"\nprovider = \"examplemail\"\n{extra}\n\
         [source.domain.dns]\nnameservers = [\"ns1.example.net.\"]\nautoconfig_addresses = [\"192.0.2.10\"]\n",
        state = dir.join("state").display(),
        url_file = dir.join("url").display(),
    );
    let path = dir.join("mailconf.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn serve(config: &Path) -> (Server, SocketAddr, SocketAddr, SocketAddr) {
    let s = Server::start(
        config,
        &[
            "--dns-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        3,
    );
    let (dns, http, metrics) = (s.addrs("DNS")[0], s.addrs("HTTP")[0], s.addrs("metrics")[0]);
    (s, dns, http, metrics)
}

/// DNS status of the IMAPS SRV query for `domain`, and the answer's target.
fn srv(dns: SocketAddr, domain: &str) -> String {
    let out = Command::new(tool("dig", "dnsutils"))
        .arg(format!("@{}", dns.ip()))
        .args(["-p", &dns.port().to_string(), "+norec", "+time=2", "+tries=1", "+short"])
        .args([&format!("_imaps._tcp.{domain}"), "SRV"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Thunderbird's document for `user@domain`: its status and the IMAP host it names.
fn autoconfig(http: SocketAddr, domain: &str) -> (u16, String) {
    let r = http_get(
        http,
        &format!("/mail/config-v1.1.xml?emailaddress=user%40{domain}"),
        &format!("autoconfig.{domain}"),
    );
    let text = r.text();
    let host = text
        .split("<hostname>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_default()
        .to_string();
    (r.status, host)
}

/// Wait (≤ 20 s) until `check` holds.
fn eventually(what: &str, s: &Server, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metrics(addr: SocketAddr) -> String {
    http_get(addr, "/metrics", "x").text()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    let key = format!("{name}{{source=\"pfa\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

// ---------------------------------------------------------------- SQLite

fn sqlite(db: &Path, sql: &str) {
    run(Command::new(tool("sqlite3", "sqlite3")).arg(db).arg(sql));
}

#[test]
fn sqlite_source_inserts_updates_deletes_and_bad_rows() {
    let dir = temp_dir("sources-sqlite");
    let db = dir.join("pfa.db");
    sqlite(&db, POSTFIXADMIN_SCHEMA);
    let config = settings(&dir, "sqlite", &format!("sqlite://{}", db.display()), "refresh = 1");
    let (s, dns, http, m) = serve(&config);
    assert_eq!(srv(dns, "one.example"), "0 1 993 mail.example.net.");
    assert_eq!(srv(dns, "one-alias.example"), "0 1 993 mail.example.net.");
    assert_eq!(autoconfig(http, "two.example"), (200, "mail.example.net".into()));
    // The file defines file.example too: reported once, with both places; the file wins.
    let dup = |l: &str| l.contains("file.example") && l.contains("settings file (domain[0]) and by source `pfa` row");
    s.wait_log(dup, 1, "the duplicate report");

    sqlite(
        &db,
        "INSERT INTO domain (domain) VALUES ('three.example'); UPDATE domain SET active = FALSE WHERE domain = 'two.example';",
    );
    eventually("the insert and the update", &s, || {
        !srv(dns, "three.example").is_empty() && autoconfig(http, "two.example").0 == 404
    });
    assert_eq!(srv(dns, "two.example"), "", "an inactive domain is gone from DNS");
    sqlite(&db, "DELETE FROM alias_domain;");
    eventually("the delete", &s, || srv(dns, "one-alias.example").is_empty());
    assert_eq!(autoconfig(http, "one.example").0, 200);

    // Bad rows: skipped with one line each; the rest keeps serving.
    sqlite(
        &db,
        "INSERT INTO domain (domain) VALUES ('bad name.example'), (hex(zeroblob(5000000))), ('four.example'); \
         INSERT INTO alias_domain VALUES ('orphan.example', 'missing.example', TRUE);",
    );
    eventually("four.example", &s, || !srv(dns, "four.example").is_empty());
    for (domain, reason) in [
        ("bad name.example", "not a valid host name"),
        ("00000000", "`domain` is longer than 253 bytes"),
        (
            "orphan.example",
            "alias of `missing.example`, which this source does not return",
        ),
    ] {
        s.wait_log(
            |l| l.contains("row skipped") && l.contains(domain) && l.contains(reason),
            1,
            reason,
        );
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        s.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("row skipped"))
            .count(),
        3,
        "each bad row is logged once, not at every refresh:\n{}",
        s.log_text()
    );
    assert_eq!(
        s.log.lock().unwrap().iter().filter(|l| dup(l)).count(),
        1,
        "the duplicate is reported once"
    );
    let text = metrics(m);
    assert_eq!(metric(&text, "mailconf_source_bad_rows"), Some(3.0), "{text}");
    assert_eq!(metric(&text, "mailconf_source_up"), Some(1.0), "{text}");

    // A settings reload keeps the source's domains (and reports nothing again).
    s.signal("HUP");
    s.wait_log(|l| l.contains("reload done"), 1, "the reload");
    assert_eq!(srv(dns, "four.example"), "0 1 993 mail.example.net.");
    assert_eq!(autoconfig(http, "one.example").0, 200);
    assert_eq!(
        s.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("row skipped"))
            .count(),
        3
    );
}

#[test]
fn check_sources_prints_rows_and_bad_rows() {
    let dir = temp_dir("sources-check");
    let db = dir.join("pfa.db");
    sqlite(&db, POSTFIXADMIN_SCHEMA);
    let config = settings(&dir, "sqlite", &format!("sqlite://{}", db.display()), "");
    let out = mailconf(&["check", "--sources", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("source `pfa` (sqlite): 4 rows, 3 domains and aliases, 0 bad rows"),
        "{}",
        stdout(&out)
    );
    sqlite(
        &db,
        "INSERT INTO domain (domain) VALUES ('-bad.example'); INSERT INTO alias_domain VALUES ('x.example', 'nowhere.example', TRUE);",
    );
    let out = mailconf(&["check", "--sources", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("(domain `-bad.example`): `-bad.example` is not a valid host name"),
        "{text}"
    );
    assert!(
        text.contains("(domain `x.example`): alias of `nowhere.example`"),
        "{text}"
    );
    assert!(text.contains("6 rows, 3 domains and aliases, 2 bad rows"), "{text}");

    std::fs::write(dir.join("url"), format!("sqlite://{}/missing.db\n", dir.display())).unwrap();
    let out = mailconf(&["check", "--sources", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("source `pfa` (sqlite): FAILED"),
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------- Commands that read the settings

/// `zone` and `render` see a source's domains as `serve` starts with them: from the query, else
/// from the result `state_dir` kept (said on stderr); with neither, `zone` fails naming the
/// source rather than leave its domains out.
#[test]
fn zone_and_render_see_the_sources_domains() {
    let dir = temp_dir("sources-zone");
    let db = dir.join("pfa.db");
    sqlite(&db, POSTFIXADMIN_SCHEMA);
    let config = settings(&dir, "sqlite", &format!("sqlite://{}", db.display()), "");
    let c = config.to_str().unwrap();
    let zone = |args: &[&str]| mailconf(&[&["zone", "--config", c][..], args].concat());
    let out = zone(&["--format", "snippet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in [
        "_imaps._tcp.one.example.",
        "_imaps._tcp.one-alias.example.",
        "_imaps._tcp.two.example.",
    ] {
        assert!(stdout(&out).contains(name), "{name}: {}", stdout(&out));
    }
    let out = zone(&["--domain", "one-alias.example"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("_imaps._tcp.one-alias.example.") && text.contains(" IN SOA "),
        "{text}"
    );
    let out = mailconf(&["render", "--config", c, "thunderbird", "--address", "u@two.example"]);
    assert!(
        out.status.success() && stdout(&out).contains("<hostname>mail.example.net</hostname>"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // The database gone and nothing kept: an error naming the source, not a silent gap.
    std::fs::rename(&db, dir.join("away.db")).unwrap();
    let out = zone(&["--format", "snippet"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("source `pfa` (sqlite)") && stderr(&out).contains("state_dir keeps no earlier result"),
        "{}",
        stderr(&out)
    );
    // `serve` keeps its last good result in state_dir; the commands then take it, and say so.
    std::fs::rename(dir.join("away.db"), &db).unwrap();
    {
        let s = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
        s.wait_log(|l| l.contains("source read"), 1, "the first query");
        let kept = dir.join("state/source-pfa.json");
        eventually("the kept result", &s, || kept.exists());
    }
    std::fs::rename(&db, dir.join("away.db")).unwrap();
    let out = zone(&["--domain", "one.example"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("source `pfa` (sqlite)") && stderr(&out).contains("using the 4 rows state_dir kept"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("_imaps._tcp.one.example."), "{}", stdout(&out));
}

/// `probe --config` compares DNS with a source's domains too: against a server that publishes
/// another provider for them, it reports the difference; against the same settings, none.
#[test]
fn probe_config_compares_the_sources_domains() {
    let dir = temp_dir("sources-probe");
    let db = dir.join("pfa.db");
    sqlite(&db, POSTFIXADMIN_SCHEMA);
    let served = settings(&dir, "sqlite", &format!("sqlite://{}", db.display()), "");
    // Autoconfig on loopback (the probe fetches it), a closed port for HTTPS.
    let text = std::fs::read_to_string(&served)
        .unwrap()
        .replace("192.0.2.10", "127.0.0.1");
    std::fs::write(&served, &text).unwrap();
    let other = dir.join("other.toml");
    let source_provider = "provider = \"examplemail\"\n\n[source.domain.dns]";
    assert!(text.contains(source_provider), "{text}");
    std::fs::write(
        &other,
        text.replace(source_provider, "provider = \"other\"\n\n[source.domain.dns]"),
    )
    .unwrap();
    let (s, dns, http, _) = serve(&served);
    let closed = free_port().to_string();
    let probe = |config: &Path| -> Vec<String> {
        let out = mailconf(&[
            "probe",
            "one.example",
            "--json",
            "--config",
            config.to_str().unwrap(),
            "--resolver",
            &dns.to_string(),
            "--timeout",
            "2",
            "--http-port",
            &http.port().to_string(),
            "--https-port",
            &closed,
        ]);
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("differs from the config")
            })
            .map(|f| f["subject"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let differs = probe(&other);
    assert!(
        differs.iter().any(|s| s == "_imaps._tcp.one.example SRV"),
        "{differs:?}\n{}",
        s.log_text()
    );
    assert_eq!(probe(&served), Vec::<String>::new());
}

/// A source removed by a reload leaves `/metrics`.
#[test]
fn a_removed_sources_metrics_disappear() {
    let dir = temp_dir("sources-metrics");
    let db = dir.join("pfa.db");
    sqlite(&db, POSTFIXADMIN_SCHEMA);
    let config = settings(&dir, "sqlite", &format!("sqlite://{}", db.display()), "");
    let (s, dns, _, m) = serve(&config);
    assert_eq!(metric(&metrics(m), "mailconf_source_up"), Some(1.0));
    let text = std::fs::read_to_string(&config).unwrap();
    let without = &text[..text.find("[[source]]").unwrap()];
    std::fs::write(&config, without).unwrap();
    s.signal("HUP");
    s.wait_log(|l| l.contains("reload done"), 1, "the reload");
    assert_eq!(srv(dns, "one.example"), "", "the source's domains are gone");
    let text = metrics(m);
    assert!(!text.contains("mailconf_source_"), "{text}");
    assert!(text.contains("mailconf_reloads_total{result=\"ok\"} 1"), "{text}");
}

// ---------------------------------------------------------------- PostgreSQL

/// A PostgreSQL cluster in a temporary directory on a free loopback port, run as `nobody`
/// when the test runs as root (PostgreSQL refuses root). Stopped on drop.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_user: Option<&'static str>,
}

impl Postgres {
    fn start(dir: &Path) -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .filter(|b| b.join("initdb").is_file())
                    .max()
            })
            .expect(
                "PostgreSQL server not found: install the Debian package `postgresql` (bash tests/install-deps.sh)",
            );
        let as_user = (run(Command::new("id").arg("-u")).trim() == "0").then_some("nobody");
        if as_user.is_some() {
            run(Command::new("chown").args(["-R", "nobody:nogroup"]).arg(dir));
        }
        let pg = Postgres {
            bin,
            data: dir.join("pgdata"),
            port: free_port(),
            as_user,
        };
        run(pg
            .cmd("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&pg.data));
        pg.up();
        pg
    }

    fn cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.as_user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.display()
        );
        run(self
            .cmd("pg_ctl")
            .args(["-w", "-D"])
            .arg(&self.data)
            .args(["-l"])
            .arg(self.data.join("log"))
            .args(["-o", &opts, "start"]));
    }

    fn down(&self) {
        run(self
            .cmd("pg_ctl")
            .args(["-w", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop"));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    fn sql(&self, sql: &str) {
        run(Command::new(tool("psql", "postgresql-client"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-c", sql]));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

#[test]
fn postgres_source_follows_the_database_and_survives_its_outage() {
    let dir = temp_dir("sources-postgres");
    let pg = Postgres::start(&dir);
    pg.sql(POSTFIXADMIN_SCHEMA);
    let config = settings(&dir, "postgres", &pg.url(), "refresh = 1");
    let (s, dns, http, m) = serve(&config);
    assert_eq!(srv(dns, "one.example"), "0 1 993 mail.example.net.");
    assert_eq!(srv(dns, "one-alias.example"), "0 1 993 mail.example.net.");
    assert_eq!(autoconfig(http, "two.example"), (200, "mail.example.net".into()));
    assert!(!s.log_text().contains("postgres://"), "the URL is never logged");

    pg.sql("INSERT INTO domain (domain) VALUES ('three.example'); UPDATE domain SET active = FALSE WHERE domain = 'two.example'; DELETE FROM alias_domain;");
    eventually("insert, update and delete", &s, || {
        !srv(dns, "three.example").is_empty()
            && autoconfig(http, "two.example").0 == 404
            && srv(dns, "one-alias.example").is_empty()
    });

    // Bad rows: NULL, 10 MB, not a name; each skipped with one line.
    pg.sql(
        "ALTER TABLE domain DROP CONSTRAINT domain_pkey, ALTER COLUMN domain TYPE TEXT; \
         INSERT INTO domain (domain) VALUES (repeat('a', 10000000)), ('not a name'), ('five.example'); \
         INSERT INTO alias_domain VALUES ('orphan.example', 'gone.example', TRUE);",
    );
    eventually("five.example", &s, || !srv(dns, "five.example").is_empty());
    s.wait_log(
        |l| l.contains("row skipped") && l.contains("longer than 253"),
        1,
        "the 10 MB row",
    );
    s.wait_log(
        |l| l.contains("row skipped") && l.contains("not a name"),
        1,
        "the bad name",
    );
    s.wait_log(
        |l| l.contains("row skipped") && l.contains("orphan.example"),
        1,
        "the orphan alias",
    );
    eventually("bad_rows 3 in /metrics", &s, || {
        metric(&metrics(m), "mailconf_source_bad_rows") == Some(3.0)
    });

    // The database goes away: answers stay, /metrics says so, one log line.
    pg.down();
    eventually("the source down in /metrics", &s, || {
        metric(&metrics(m), "mailconf_source_up") == Some(0.0)
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(srv(dns, "three.example"), "0 1 993 mail.example.net.");
    assert_eq!(autoconfig(http, "one.example").0, 200);
    let text = metrics(m);
    assert!(
        metric(&text, "mailconf_source_errors_total").unwrap_or(0.0) >= 2.0,
        "{text}"
    );
    assert!(
        metric(&text, "mailconf_source_last_success_timestamp_seconds").unwrap_or(0.0) > 1.7e9,
        "{text}"
    );
    assert_eq!(
        s.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("source refresh failed"))
            .count(),
        1,
        "a failure is logged once per change:\n{}",
        s.log_text()
    );

    // Restart while the database is down: served from state_dir.
    drop(s);
    let (s, dns, http, _) = serve(&config);
    s.wait_log(
        |l| l.contains("serving the result kept in state_dir"),
        1,
        "the kept result",
    );
    assert_eq!(srv(dns, "five.example"), "0 1 993 mail.example.net.");
    assert_eq!(autoconfig(http, "three.example").0, 200);

    // It comes back: changes flow again.
    pg.up();
    pg.sql("DELETE FROM domain WHERE domain = 'five.example'");
    s.wait_log(|l| l.contains("source readable again"), 1, "recovery");
    eventually("the delete after recovery", &s, || srv(dns, "five.example").is_empty());
}

#[test]
fn postgres_listen_notify_applies_changes_at_once() {
    let dir = temp_dir("sources-pg-listen");
    let pg = Postgres::start(&dir);
    // The README's one-table shape, with a provider column.
    pg.sql("CREATE TABLE mail_domains (name TEXT PRIMARY KEY, provider TEXT)");
    pg.sql("INSERT INTO mail_domains VALUES ('one.example', NULL), ('other.example', 'other')");
    let config = dir.join("mailconf.toml");
    std::fs::write(
        &config,
        format!(
            "{PROVIDER}\n[[source]]\nkind = \"postgres\"\nurl = \"{}\"\n\
             query = \"SELECT name AS domain, provider FROM mail_domains\"\nprovider = \"examplemail\"\n\
             refresh = 3600\nlisten = \"mailconf\"\n[source.domain.dns]\nnameservers = [\"ns1.example.net.\"]\n",
            pg.url()
        ),
    )
    .unwrap();
    let (s, dns, http, _) = serve(&config);
    assert_eq!(autoconfig(http, "other.example"), (200, "imap.other.example".into()));
    assert_eq!(srv(dns, "one.example"), "0 1 993 mail.example.net.");
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    pg.sql("INSERT INTO mail_domains VALUES ('new.example', 'other'); NOTIFY mailconf;");
    eventually("the notified insert", &s, || {
        srv(dns, "new.example") == "0 1 993 imap.other.example."
    });
    assert!(t.elapsed() < Duration::from_secs(10), "NOTIFY, not the hourly refresh");
}

// ---------------------------------------------------------------- MariaDB

/// A MariaDB server in a temporary directory on a free loopback port, without grant tables.
struct Mariadb {
    child: std::process::Child,
    port: u16,
}

impl Mariadb {
    fn start(dir: &Path) -> Mariadb {
        let data = dir.join("mysql");
        run(Command::new(tool("mariadb-install-db", "mariadb-server"))
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]));
        let port = free_port();
        let child = Command::new(tool("mariadbd", "mariadb-server"))
            .args([
                "--no-defaults",
                "--user=root",
                "--skip-grant-tables",
                "--bind-address=127.0.0.1",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--port={port}"))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let db = Mariadb { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mariadbd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        db
    }

    fn sql(&self, sql: &str) {
        run(Command::new(tool("mariadb", "mariadb-client"))
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-P",
                &self.port.to_string(),
            ])
            .args([
                "-e",
                &format!("CREATE DATABASE IF NOT EXISTS postfix; USE postfix; {sql}"),
            ]));
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        // Stopped by its PID (this test started it).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mariadb_source_follows_the_database() {
    let dir = temp_dir("sources-mariadb");
    let db = Mariadb::start(&dir);
    db.sql(POSTFIXADMIN_SCHEMA);
    let url = format!("mysql://root@127.0.0.1:{}/postfix", db.port);
    let config = settings(&dir, "mysql", &url, "refresh = 1");
    let (s, dns, http, _) = serve(&config);
    assert_eq!(srv(dns, "one-alias.example"), "0 1 993 mail.example.net.");
    assert_eq!(autoconfig(http, "two.example"), (200, "mail.example.net".into()));
    db.sql("INSERT INTO domain (domain) VALUES ('three.example'); UPDATE domain SET active = FALSE WHERE domain = 'two.example';");
    eventually("insert and update", &s, || {
        !srv(dns, "three.example").is_empty() && autoconfig(http, "two.example").0 == 404
    });
    db.sql("DELETE FROM domain WHERE domain = 'one.example'");
    eventually("the delete", &s, || srv(dns, "one.example").is_empty());
    // The alias of a deleted domain is a bad row now.
    s.wait_log(
        |l| l.contains("row skipped") && l.contains("one-alias.example"),
        1,
        "the orphan alias",
    );
}
