//! Importing the saved objects into Kibana (`setup --dashboards`): one multipart
//! `POST /api/saved_objects/_import` (in the configured space), as Beats does.

use serde::Deserialize;

use crate::config::KibanaConfig;
use crate::output::elasticsearch::client::{agent, auth_header, base_url_port};

/// Largest answer read from Kibana: it lists every object imported.
const MAX_ANSWER: u64 = 16 << 20;

/// What Kibana said of an import.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Objects imported (created or overwritten).
    pub count: u64,
    /// Objects refused, each as `type/id: error type (message)`.
    pub errors: Vec<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    success: bool,
    #[serde(default, rename = "successCount")]
    success_count: u64,
    #[serde(default)]
    errors: Vec<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    error: ErrorInfo,
}

#[derive(Deserialize, Default)]
struct ErrorInfo {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<String>,
}

/// The import URL: the base from `host`/`protocol`/`path` (port 5601 by default),
/// the space, the API path.
pub fn import_url(cfg: &KibanaConfig, overwrite: bool) -> Result<String, String> {
    let base = base_url_port(
        &cfg.host,
        cfg.protocol.as_deref(),
        cfg.path.as_deref(),
        5601,
    )
    .map_err(|e| format!("setup.kibana.host: {e}"))?;
    let space = match cfg.space_id.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() && s != "default" => {
            if !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "setup.kibana.space.id: {s:?}: lower-case letters, digits, '_' and '-' only"
                ));
            }
            format!("/s/{s}")
        }
        _ => String::new(),
    };
    Ok(format!(
        "{base}{space}/api/saved_objects/_import?overwrite={overwrite}"
    ))
}

/// The multipart body of an import of `ndjson` and its content type.
fn multipart(ndjson: &str) -> (Vec<u8>, String) {
    // A boundary that no line of the export can contain: the export is JSON
    // objects, one per line, and this has no quotes or braces.
    let boundary = "wirebeat-saved-objects-7c1e0b5d";
    let mut body = Vec::with_capacity(ndjson.len() + 256);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        b"Content-Disposition: form-data; name=\"file\"; filename=\"wirebeat.ndjson\"\r\n",
    );
    body.extend_from_slice(b"Content-Type: application/ndjson\r\n\r\n");
    body.extend_from_slice(ndjson.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// Imports `ndjson` into the Kibana of `cfg`. `Err` when Kibana cannot be
/// reached, refuses the request, or answers something else than an import
/// result; objects it refused one by one are listed in [`Imported::errors`].
pub fn import(cfg: &KibanaConfig, ndjson: &str, overwrite: bool) -> Result<Imported, String> {
    let url = import_url(cfg, overwrite)?;
    let agent = agent(
        &cfg.tls_certificate_authorities,
        cfg.tls_verify,
        cfg.timeout,
    )
    .map_err(|e| format!("setup.kibana.ssl: {e}"))?;
    let (body, ctype) = multipart(ndjson);
    let mut req = ureq::http::Request::builder()
        .method("POST")
        .uri(&url)
        .header("kbn-xsrf", "wirebeat")
        .header("Content-Type", ctype);
    if let Some(a) = auth_header(
        cfg.username.as_deref(),
        cfg.password.as_deref(),
        cfg.api_key.as_deref(),
    ) {
        req = req.header("Authorization", a);
    }
    let req = req.body(body).map_err(|e| format!("{url}: {e}"))?;
    let resp = agent
        .run(req)
        .map_err(|e| format!("Kibana at {url} could not be reached: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .into_body()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| format!("{url}: reading the answer: {e}"))?;
    let snippet = || String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned();
    match status {
        200 => {}
        401 => {
            return Err(format!(
                "Kibana refused the credentials (401): check setup.kibana.username/password or api_key: {}",
                snippet()
            ));
        }
        403 => {
            return Err(format!(
                "Kibana denied the import (403): the user needs the saved objects privilege in the space: {}",
                snippet()
            ));
        }
        s => return Err(format!("Kibana answered {s}: {}", snippet())),
    }
    let a: Answer = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "Kibana's answer is not an import result ({e}): {}",
            snippet()
        )
    })?;
    let errors: Vec<String> = a
        .errors
        .iter()
        .map(|e| {
            let msg = e.error.message.as_deref().unwrap_or("");
            if msg.is_empty() {
                format!("{}/{}: {}", e.kind, e.id, e.error.kind)
            } else {
                format!("{}/{}: {} ({msg})", e.kind, e.id, e.error.kind)
            }
        })
        .collect();
    if !a.success && errors.is_empty() {
        return Err(format!("Kibana reported a failed import: {}", snippet()));
    }
    Ok(Imported {
        count: a.success_count,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_by_host_and_space() {
        let mut k = KibanaConfig::default();
        assert_eq!(
            import_url(&k, true).unwrap(),
            "http://localhost:5601/api/saved_objects/_import?overwrite=true"
        );
        k.host = "https://kb.example:443/kibana".into();
        k.space_id = Some("ops-2".into());
        assert_eq!(
            import_url(&k, false).unwrap(),
            "https://kb.example:443/kibana/s/ops-2/api/saved_objects/_import?overwrite=false"
        );
        k.space_id = Some("default".into());
        assert!(!import_url(&k, true).unwrap().contains("/s/"));
        k.space_id = Some("../x".into());
        assert!(import_url(&k, true).unwrap_err().contains("space.id"));
        k.space_id = None;
        k.host = "ftp://x".into();
        assert!(
            import_url(&k, true)
                .unwrap_err()
                .contains("setup.kibana.host")
        );
    }

    #[test]
    fn the_multipart_body_holds_the_export_as_one_file() {
        let (body, ctype) = multipart("{\"a\":1}\n{\"b\":2}\n");
        let boundary = ctype
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert!(text.contains("name=\"file\"; filename=\"wirebeat.ndjson\""));
        assert!(text.contains("\r\n\r\n{\"a\":1}\n{\"b\":2}\n\r\n"));
    }
}
