//! TLS to PostgreSQL the libpq way, on rustls (ring provider).
//!
//! tokio-postgres only knows `sslmode` disable/prefer/require and no certificate
//! files, and refuses the other `ssl*` keywords, so [`take_ssl_params`] takes them out
//! of the connection string first and [`TlsParams`] resolves them (with `PGSSL*` and
//! `~/.postgresql/` defaults) into a [`MakeRustls`] connector:
//!
//! | sslmode | encrypted | server certificate checked |
//! |---|---|---|
//! | disable | never | — |
//! | allow, prefer | if the server agrees | no |
//! | require | always | no; chain only when a root certificate file is given or `~/.postgresql/root.crt` exists (libpq's habit) |
//! | verify-ca | always | chain against `sslrootcert` |
//! | verify-full | always | chain and host name |
//!
//! Nothing here ever prints a key's contents: file problems name the file and the
//! kind of problem only.
//!
//! By job: [`settings`] (the keywords and their resolution), [`config`] (files into a
//! rustls configuration), [`verifier`] (the `sslmode` checks rustls lacks),
//! [`explain`] (failures in words) and [`stream`] (what tokio-postgres drives).

mod config;
mod explain;
mod settings;
mod stream;
mod verifier;

pub(crate) use explain::rustls_error_in_io;
pub use explain::TlsError;
pub use settings::SslMode;
pub(crate) use settings::{take_ssl_params, TlsParams};
pub(crate) use stream::MakeRustls;
