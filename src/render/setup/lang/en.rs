//! English.

use super::Text;
use crate::vocab::{Auth, Dav};

pub(super) const TEXT: Text = Text {
    name: "English",
    languages: "Other languages",
    title: "E-mail settings for",
    intro: "Most mail apps set themselves up from your e-mail address alone. If yours asks for servers, enter these values.",
    provider: "Provider",
    documentation: "More help from",
    address_label: "Your e-mail address",
    address_hint: "fills in your user name below; it is not stored",
    address_button: "Show my settings",
    incoming: "Incoming mail",
    outgoing: "Outgoing mail (SMTP)",
    preferred: "recommended",
    alternative: "alternative",
    server: "Server",
    port: "Port",
    security: "Encryption",
    username: "User name",
    auth: "Authentication",
    no_encryption: "none",
    placeholders: [
        "your e-mail address",
        "the part of your address before the @",
        "the part of your address after the @",
    ],
    dav_heading: "Calendars and contacts",
    dav_text: "Calendar and address book apps that ask for a CalDAV or CardDAV account need these values.",
    url: "Server address (URL)",
    apple_heading: "iPhone, iPad and Mac",
    apple_text: "A configuration profile sets up Apple Mail for you: download it, then open Settings to install it.",
    apple_button: "Download the profile",
    qr_text: "On a phone, scan this code with the camera to open the profile.",
    qr_label: "QR code of the profile's address",
    dns_heading: "DNS records (for postmasters)",
    dns_text: "Mail apps find the servers above through these records.",
    not_found_title: "No mail settings here",
    not_found_text: "This address publishes no mail settings. Check the address in your browser.",
    bad_address_title: "Not an e-mail address",
    bad_address_text: "Please check the address and try again.",
    auth_names,
    dav_names,
};

/// As Thunderbird's account settings name them.
fn auth_names(a: Auth) -> &'static str {
    match a {
        Auth::PasswordCleartext => "Normal password",
        Auth::PasswordEncrypted => "Encrypted password",
        Auth::Oauth2 => "OAuth2",
        Auth::Ntlm => "NTLM",
        Auth::Gssapi => "Kerberos / GSSAPI",
        Auth::ClientIpAddress => "No authentication (your network is known)",
        Auth::TlsClientCert => "TLS certificate",
        Auth::None => "No authentication",
    }
}

/// What the service holds.
fn dav_names(d: Dav) -> &'static str {
    match d {
        Dav::CalDav => "calendars",
        Dav::CardDav => "contacts",
    }
}
