//! Step 1: what DNS says, and (with `--config`) whether it is what mailconf would publish.

use std::collections::BTreeSet;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{RData, RecordType};

use super::net::Resolver;
use super::{Advertised, Level, Options, Report};
use crate::records;
use crate::render::zonefile::rdata_text;
use crate::vocab::{self, SRV_LABELS};

/// Check every name; return the mail servers the SRV records advertise.
pub(super) fn check(opts: &Options, resolver: &Resolver, report: &mut Report) -> Vec<Advertised> {
    let d = &opts.domain;
    let expected = expected_records(opts);
    let mut servers = Vec::new();
    let mut names: Vec<(String, RecordType)> = SRV_LABELS
        .iter()
        .map(|l| (format!("{l}._tcp.{d}"), RecordType::SRV))
        .collect();
    names.push((format!("_autodiscover._tcp.{d}"), RecordType::SRV));
    names.extend([
        (d.clone(), RecordType::MX),
        (d.clone(), RecordType::TXT),
        (format!("_dmarc.{d}"), RecordType::TXT),
        (format!("_mta-sts.{d}"), RecordType::TXT),
        (format!("_smtp._tls.{d}"), RecordType::TXT),
    ]);
    for (name, rtype) in names {
        let answer = match resolver.query(&name, rtype) {
            Ok(a) => a,
            Err(e) => {
                report.add(
                    "dns",
                    format!("{name} {rtype}"),
                    Level::Fail,
                    e,
                    Some("check --resolver and that the name servers answer"),
                );
                continue;
            }
        };
        if !matches!(answer.rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
            report.add(
                "dns",
                format!("{name} {rtype}"),
                Level::Fail,
                format!("resolver answered {}", answer.rcode),
                None,
            );
            continue;
        }
        // Shown as published; compared case-insensitively (names in RDATA are case-insensitive).
        let got: BTreeSet<String> = answer
            .records
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| rdata_text(&r.data))
            .collect();
        let got_lower: BTreeSet<String> = got.iter().map(|v| v.to_ascii_lowercase()).collect();
        let subject = format!("{name} {rtype}");
        if let Some(exp) = &expected {
            let want: BTreeSet<String> = exp
                .iter()
                .filter(|(n, t, _)| n.eq_ignore_ascii_case(&name) && *t == rtype)
                .map(|(_, _, v)| v.clone())
                .collect();
            if want != got_lower {
                let mut diff: Vec<String> = want.difference(&got_lower).map(|v| format!("- {v}")).collect();
                diff.extend(got_lower.difference(&want).map(|v| format!("+ {v}")));
                report.add(
                    "dns",
                    &subject,
                    Level::Fail,
                    format!("differs from the config: {}", diff.join("; ")),
                    Some("publish the output of `mailconf zone` (or serve it)"),
                );
                continue;
            }
        }
        let label = name.split('.').next().unwrap_or_default();
        match (rtype, vocab::srv_meaning(label)) {
            (RecordType::SRV, Some((protocol, modes))) => {
                for r in &answer.records {
                    if let RData::SRV(srv) = &r.data
                        && !srv.target.is_root()
                    {
                        let host = srv.target.to_ascii().trim_end_matches('.').to_ascii_lowercase();
                        servers.push(Advertised {
                            protocol,
                            host,
                            port: srv.port,
                            security: modes[0],
                        });
                    }
                }
                srv_finding(report, &subject, label, &got);
            }
            (RecordType::SRV, None) if got.is_empty() => report.add(
                "dns",
                subject,
                Level::Warn,
                "not published: Outlook's last resort and Thunderbird's Exchange probe use it",
                None,
            ),
            (RecordType::MX, _) if got.is_empty() => report.add(
                "dns",
                subject,
                Level::Warn,
                "no MX: mail goes to the A record (RFC 5321 §5.1)",
                Some("publish MX, or `MX 0 .` if the domain takes no mail (RFC 7505)"),
            ),
            (RecordType::TXT, _) => txt_finding(report, &subject, &name, d, &got),
            _ => report.add(
                "dns",
                subject,
                Level::Pass,
                got.iter().cloned().collect::<Vec<_>>().join(", "),
                None,
            ),
        }
    }
    servers
}

fn srv_finding(report: &mut Report, subject: &str, label: &str, got: &BTreeSet<String>) {
    if got.is_empty() {
        let fix = format!("publish {label}._tcp, or `0 0 0 .` if the service is not offered (RFC 6186 §4)");
        report.add(
            "dns",
            subject,
            Level::Warn,
            "not published: SRV-reading clients (K-9/Thunderbird for Android, Evolution, aerc) find nothing",
            Some(&fix),
        );
    } else if got.len() > 1 && got.contains("0 0 0 .") {
        report.add(
            "dns",
            subject,
            Level::Fail,
            "`0 0 0 .` must be the only record of its RRset (RFC 2782)",
            None,
        );
    } else if got.contains("0 0 0 .") {
        report.add("dns", subject, Level::Pass, "service not offered (0 0 0 .)", None);
    } else {
        report.add(
            "dns",
            subject,
            Level::Pass,
            got.iter().cloned().collect::<Vec<_>>().join(", "),
            None,
        );
    }
}

fn txt_finding(report: &mut Report, subject: &str, name: &str, domain: &str, got: &BTreeSet<String>) {
    // rdata_text quotes each string; the policy is the concatenation.
    let values: Vec<String> = got
        .iter()
        .map(|q| q.split("\" \"").collect::<String>().trim_matches('"').to_string())
        .collect();
    let (prefix, what, required) = if name == domain {
        ("v=spf1", "SPF (RFC 7208)", true)
    } else if name.starts_with("_dmarc.") {
        ("v=dmarc1", "DMARC (RFC 7489)", true)
    } else if name.starts_with("_mta-sts.") {
        ("v=stsv1", "MTA-STS (RFC 8461)", false)
    } else {
        ("v=tlsrptv1", "TLS-RPT (RFC 8460)", false)
    };
    let matching: Vec<&String> = values
        .iter()
        .filter(|v| v.to_ascii_lowercase().starts_with(prefix))
        .collect();
    match matching.len() {
        0 if required => report.add("dns", subject, Level::Warn, format!("no {what} record"), None),
        0 => report.add(
            "dns",
            subject,
            Level::Pass,
            format!("no {what} record (optional)"),
            None,
        ),
        1 => report.add("dns", subject, Level::Pass, matching[0].clone(), None),
        n => report.add(
            "dns",
            subject,
            Level::Fail,
            format!("{n} {what} records: receivers treat that as an error"),
            Some("publish exactly one"),
        ),
    }
}

/// (owner, type, rdata text) of everything mailconf would publish for the domain.
fn expected_records(opts: &Options) -> Option<Vec<(String, RecordType, String)>> {
    let settings = opts.settings.as_ref()?;
    let domain = settings.domain(&opts.domain)?;
    let dr = records::for_name(settings, domain, &opts.domain.to_ascii_lowercase())?;
    let all = dr
        .zones
        .iter()
        .flat_map(|z| z.records())
        .chain(dr.parent.iter().flat_map(|g| g.records.iter()));
    Some(
        all.map(|r| {
            (
                r.name.to_ascii().trim_end_matches('.').to_string(),
                r.record_type(),
                rdata_text(&r.data).to_ascii_lowercase(),
            )
        })
        .collect(),
    )
}
