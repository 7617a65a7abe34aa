//! The one step of loading that reads files besides the settings file itself: the TLS
//! certificate chain and key of `[server.tls]`, and the `ca_roots` of `[server.tls.acme]`.
//!
//! [`Settings::from_toml`](super::Settings::from_toml) only records which files a setting
//! names and where it names them ([`FileRef`]); [`read`] opens them, so `check`, the start of
//! `serve` and every reload catch a broken or mismatched file, located at its setting, instead
//! of failing later at the first TLS handshake. Commands that need no certificate (`zone`,
//! `render`, `probe`) skip this step.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::{ServerSettings, TlsFiles};

/// A file named by a setting, with where the setting is (file, line, column, field) so that a
/// problem with the file is reported there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// As written in the settings file.
    pub path: String,
    /// The setting's location; `message` is empty.
    at: Diagnostic,
}

impl FileRef {
    pub(super) fn new(path: String, at: Diagnostic) -> FileRef {
        FileRef { path, at }
    }

    fn problem(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            ..self.at.clone()
        }
    }
}

/// `[server.tls]` `cert` and `key` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSource {
    pub cert: FileRef,
    pub key: FileRef,
}

/// Read every file `server` names into it: `tls` from `tls_source`, the ACME `ca_roots`.
pub(super) fn read(server: &mut ServerSettings) -> Result<(), Diagnostics> {
    let mut problems = Vec::new();
    if let Some(source) = &server.tls_source {
        match tls_files(source) {
            Ok(files) => server.tls = Some(Arc::new(files)),
            Err(d) => problems.push(d),
        }
    }
    if let Some(acme) = &mut server.acme
        && let Some(file) = &acme.ca_roots_file
    {
        match CertificateDer::pem_file_iter(&file.path).map(|it| it.collect::<Result<Vec<_>, _>>()) {
            Ok(Ok(c)) if !c.is_empty() => Arc::make_mut(acme).ca_roots = c,
            _ => problems.push(file.problem(format!("`{}` holds no readable PEM certificate", file.path))),
        }
    }
    for key in &mut server.tsig {
        if let Some(file) = &key.secret_file {
            match tsig_secret_file(file) {
                Ok(secret) => key.secret = secret,
                Err(d) => problems.push(d),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(problems))
    }
}

/// A TSIG secret as `tsig-keygen` and `keymgr` print it: standard base64 with padding.
pub(super) fn decode_secret(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
        Ok(b) if !b.is_empty() => Ok(b),
        Ok(_) => Err("the secret is empty".into()),
        Err(_) => Err("the secret is not base64 (as tsig-keygen or keymgr print it)".into()),
    }
}

/// The secret of a `secret_file`: the base64 alone, or the `secret` line of a key file as
/// `tsig-keygen` (`secret "…";`) or `keymgr` (`secret: …`) write it.
fn tsig_secret_file(file: &FileRef) -> Result<Vec<u8>, Diagnostic> {
    let text =
        std::fs::read_to_string(&file.path).map_err(|e| file.problem(format!("cannot read `{}`: {e}", file.path)))?;
    let line = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("secret"))
        .map(|rest| {
            rest.trim_start_matches([':', ' ', '\t'])
                .trim_end_matches([';', ' '])
                .trim_matches('"')
        })
        .unwrap_or(text.trim());
    decode_secret(line).map_err(|e| file.problem(format!("`{}`: {e}", file.path)))
}

/// Read the certificate chain and the key, and check that the key belongs to the first
/// certificate.
fn tls_files(source: &TlsSource) -> Result<TlsFiles, Diagnostic> {
    let TlsSource { cert, key } = source;
    let chain: Vec<CertificateDer<'static>> =
        match CertificateDer::pem_file_iter(&cert.path).map(|it| it.collect::<Result<Vec<_>, _>>()) {
            Ok(Ok(c)) if !c.is_empty() => c,
            Ok(Ok(_)) => return Err(cert.problem(format!("`{}` holds no PEM certificate", cert.path))),
            Ok(Err(e)) | Err(e) => return Err(cert.problem(format!("cannot read `{}`: {e}", cert.path))),
        };
    let key_der = PrivateKeyDer::from_pem_file(&key.path)
        .map_err(|e| key.problem(format!("cannot read a PEM private key from `{}`: {e}", key.path)))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|e| key.problem(format!("unsupported private key: {e}")))?;
    rustls::sign::CertifiedKey::new(chain.clone(), signing)
        .keys_match()
        .map_err(|e| key.problem(format!("does not belong to the certificate in `{}`: {e}", cert.path)))?;
    Ok(TlsFiles {
        cert_path: cert.path.clone(),
        key_path: key.path.clone(),
        chain,
        key: key_der,
    })
}

#[cfg(test)]
mod tests {
    use crate::settings::Settings;

    const PROVIDER: &str = "[provider.p]\ndisplay_name = \"P\"\n\
        [[provider.p.server]]\nprotocol = \"imap\"\nhost = \"imap.example.net\"\nport = 993\nsecurity = \"tls\"\n\
        [[provider.p.server]]\nprotocol = \"smtp\"\nhost = \"smtp.example.net\"\nport = 465\nsecurity = \"tls\"\n";

    /// Parse `server` (a `[server.tls…]` table) after a valid provider; the line of `needle`.
    fn parse(server: &str, needle: &str) -> (Settings, usize) {
        let text = format!("{PROVIDER}{server}");
        let line = text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
        let s = Settings::from_toml(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        (s, line)
    }

    #[test]
    fn parsing_reads_no_file_and_reading_locates_the_setting() {
        let (mut s, line) = parse(
            "[server.tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
            "cert = ",
        );
        assert!(s.server.tls.is_none(), "nothing read yet");
        assert_eq!(s.server.tls_source.as_ref().unwrap().cert.path, "/nonexistent/cert.pem");
        let errs = s.read_files().unwrap_err();
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert!(
            errs.to_string().starts_with(&format!(
                "t.toml:{line}:8: server.tls.cert: cannot read `/nonexistent/cert.pem`"
            )),
            "{errs}"
        );
    }

    #[test]
    fn acme_ca_roots_are_read_in_the_file_step() {
        let (mut s, line) = parse(
            "[server.tls.acme]\ndirectory = \"https://acme.test/dir\"\ncache_dir = \"/tmp/x\"\n\
             ca_roots = \"/nonexistent/roots.pem\"\n",
            "ca_roots = ",
        );
        let errs = s.read_files().unwrap_err();
        assert_eq!(
            errs.to_string(),
            format!(
                "t.toml:{line}:12: server.tls.acme.ca_roots: `/nonexistent/roots.pem` holds no readable PEM certificate"
            )
        );
    }
}
