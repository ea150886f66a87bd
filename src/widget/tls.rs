//! The widget's TLS: the configured PEM certificate and key, or a
//! certificate for `localhost` made at start (`self_signed`, for trials:
//! Genesys loads widget pages only over HTTPS). rustls on ring; HTTP/2 is
//! offered, so the up to ten widget pages of one agent share a connection.

use axum_server::tls_rustls::RustlsConfig;

use super::{WidgetConfig, WidgetError};

/// The TLS settings to serve with, or `None` for plain HTTP.
pub async fn server_config(config: &WidgetConfig) -> Result<Option<RustlsConfig>, WidgetError> {
    let (cert, key) = match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => {
            let read = |p: &std::path::Path, what: &str| {
                std::fs::read(p)
                    .map_err(|e| WidgetError::Tls(format!("cannot read the {what} {}: {e}", p.display())))
            };
            (read(cert, "certificate")?, read(key, "private key")?)
        }
        _ if config.self_signed => self_signed()?,
        _ => return Ok(None),
    };
    let tls = RustlsConfig::from_pem(cert, key).await.map_err(|e| {
        let files = match (&config.cert, &config.key) {
            (Some(c), Some(k)) => format!(" ({} and {})", c.display(), k.display()),
            _ => String::new(),
        };
        WidgetError::Tls(format!("the certificate and key{files} are not a usable PEM pair: {e}"))
    })?;
    Ok(Some(tls))
}

/// A fresh certificate for `localhost`, `127.0.0.1` and `::1`, as PEM.
pub fn self_signed() -> Result<(Vec<u8>, Vec<u8>), WidgetError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| WidgetError::Tls(format!("cannot make a self-signed certificate: {e}")))?;
    Ok((made.cert.pem().into_bytes(), made.signing_key.serialize_pem().into_bytes()))
}
