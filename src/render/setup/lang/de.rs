//! Deutsch.

use super::Text;
use crate::vocab::{Auth, Dav};

pub(super) const TEXT: Text = Text {
    name: "Deutsch",
    languages: "Andere Sprachen",
    title: "E-Mail-Einstellungen für",
    intro: "Die meisten Mail-Programme richten sich mit Ihrer E-Mail-Adresse allein ein. Fragt Ihres nach Servern, tragen Sie diese Werte ein.",
    provider: "Anbieter",
    documentation: "Weitere Hilfe von",
    address_label: "Ihre E-Mail-Adresse",
    address_hint: "ergänzt unten Ihren Benutzernamen; sie wird nicht gespeichert",
    address_button: "Meine Einstellungen zeigen",
    incoming: "Posteingang",
    outgoing: "Postausgang (SMTP)",
    preferred: "empfohlen",
    alternative: "Alternative",
    server: "Server",
    port: "Port",
    security: "Verschlüsselung",
    username: "Benutzername",
    auth: "Authentifizierung",
    no_encryption: "keine",
    placeholders: [
        "Ihre E-Mail-Adresse",
        "der Teil Ihrer Adresse vor dem @",
        "der Teil Ihrer Adresse nach dem @",
    ],
    dav_heading: "Kalender und Kontakte",
    dav_text: "Kalender- und Adressbuch-Apps, die nach einem CalDAV- oder CardDAV-Konto fragen, brauchen diese Werte.",
    url: "Serveradresse (URL)",
    apple_heading: "iPhone, iPad und Mac",
    apple_text: "Ein Konfigurationsprofil richtet Apple Mail für Sie ein: laden Sie es, dann installieren Sie es in den Einstellungen.",
    apple_button: "Profil laden",
    qr_text: "Am Telefon: Scannen Sie diesen Code mit der Kamera, um das Profil zu öffnen.",
    qr_label: "QR-Code der Adresse des Profils",
    dns_heading: "DNS-Einträge (für Postmaster)",
    dns_text: "Über diese Einträge finden Mail-Programme die Server oben.",
    not_found_title: "Hier gibt es keine Mail-Einstellungen",
    not_found_text: "Für diese Adresse sind keine Mail-Einstellungen veröffentlicht. Prüfen Sie die Adresse im Browser.",
    bad_address_title: "Keine E-Mail-Adresse",
    bad_address_text: "Bitte prüfen Sie die Adresse und versuchen Sie es noch einmal.",
    auth_names,
    dav_names,
};

/// Wie Thunderbirds Kontoeinstellungen sie nennen.
fn auth_names(a: Auth) -> &'static str {
    match a {
        Auth::PasswordCleartext => "Passwort, normal",
        Auth::PasswordEncrypted => "Verschlüsseltes Passwort",
        Auth::Oauth2 => "OAuth2",
        Auth::Ntlm => "NTLM",
        Auth::Gssapi => "Kerberos / GSSAPI",
        Auth::ClientIpAddress => "Keine Authentifizierung (Ihr Netz ist bekannt)",
        Auth::TlsClientCert => "TLS-Zertifikat",
        Auth::None => "Keine Authentifizierung",
    }
}

/// Was der Dienst enthält.
fn dav_names(d: Dav) -> &'static str {
    match d {
        Dav::CalDav => "Kalender",
        Dav::CardDav => "Kontakte",
    }
}
