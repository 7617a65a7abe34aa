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

/// The 400 body for any other protocol (ActiveSync, Ews, …).
pub fn invalid_protocol(protocol: &str) -> Vec<u8> {
    json!({
        "ErrorCode": "InvalidProtocol",
        "ErrorMessage": format!("The given protocol value '{protocol}' is invalid. Supported values are '{PROTOCOL_V1}'"),
    })
    .to_string()
    .into_bytes()
}
