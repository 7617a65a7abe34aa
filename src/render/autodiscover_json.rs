//! Autodiscover v2 (`GET /autodiscover/autodiscover.json?Email=…&Protocol=…`): points Outlook at
//! the POX endpoint. Shapes as Exchange and mailcow answer them (spec sheet §3.6).

use serde_json::json;

use crate::model::ClientConfig;

/// The canonical protocol name; clients send it in any case (Outlook: `Autodiscoverv1`).
pub const PROTOCOL_V1: &str = "AutodiscoverV1";

/// `{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.<domain>/autodiscover/autodiscover.xml"}`
pub fn v1(cfg: &ClientConfig) -> Vec<u8> {
    let url = crate::vocab::pox_url(&cfg.requested);
    json!({ "Protocol": PROTOCOL_V1, "Url": url }).to_string().into_bytes()
}

/// The 400 body for any other protocol (ActiveSync, Ews, …). It repeats the client's value, as
/// Exchange does; `<`, `>` and `&` in it are written as `\u003c`, `\u003e`, `\u0026` (still the
/// same JSON string), so no markup the client sent comes back as markup if the body is ever
/// sniffed as HTML (found by the `http` fuzz target).
pub fn invalid_protocol(protocol: &str) -> Vec<u8> {
    let text = json!({
        "ErrorCode": "InvalidProtocol",
        "ErrorMessage": format!("The given protocol value '{protocol}' is invalid. Supported values are '{PROTOCOL_V1}'"),
    })
    .to_string();
    // Outside strings this JSON has no such characters, so replacing them everywhere is exact.
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_the_protocol_is_escaped_and_the_json_reads_back() {
        let body = invalid_protocol("Auto<script>&x");
        let text = String::from_utf8(body).unwrap();
        assert!(
            !text.contains('<') && !text.contains('>') && !text.contains('&'),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["ErrorMessage"].as_str().unwrap().contains("'Auto<script>&x'"));
    }
}
