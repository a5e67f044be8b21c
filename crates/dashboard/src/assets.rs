//! The page and its files, compiled into the binary: nothing is read from disk or fetched
//! from elsewhere at run time.
//!
//! Every answer carries a `Content-Security-Policy` that allows only this origin (scripts,
//! styles, connections) and inline `data:` images (the empty favicon), so a page that tried
//! to load anything from a CDN would fail in the browser, and the browser tests would see it.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Only this origin; `data:` for images so the page can name an empty favicon (otherwise the
/// browser asks for `/favicon.ico`, which the gateway answers `404`); no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The page's files: `(name, content type, content)`.
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/charts.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

/// The page.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

fn answer(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The files change with the binary; asking again each load costs a few kilobytes on
    // loopback and never shows a page from an older build.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /dashboard`.
pub async fn page() -> Response {
    answer("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /dashboard/assets/{file}`: one of [`FILES`], else `404`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => answer(content_type, body),
        None => crate::error(StatusCode::NOT_FOUND, format!("no asset {file}")),
    }
}
