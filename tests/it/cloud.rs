//! Azure Blob Storage and Google Cloud Storage against their emulators on loopback,
//! as s3.rs does with moto_server: on Azurite, the store contract and a backup →
//! verify → restore → prune round trip through the binary; on gcp-storage-emulator,
//! which lacks the XML API object_store's GCS client uses, a test that pins each gap
//! (see [`the_gcs_emulator_lacks_the_xml_api_object_store_uses`]).
//!
//! - Azure: Azurite's blob service (npm `azurite`, `azurite-blob`, or
//!   `$PGBUNKER_AZURITE`). object_store reaches it with `AZURE_STORAGE_USE_EMULATOR=true`
//!   and `AZURITE_BLOB_STORAGE_URL` (account `devstoreaccount1`, its well-known key).
//! - GCS: `gcp-storage-emulator` (PyPI, or `$PGBUNKER_GCS_EMULATOR`). object_store
//!   reaches it through a service account key without a private key that names the
//!   emulator (`gcs_base_url`) and turns OAuth off (`disable_oauth`), plus
//!   `GOOGLE_ALLOW_HTTP=true` (object_store's documented way to reach an emulator).
//!
//! Like the S3 tests, these fail (never skip) when the emulator is missing:
//! `.ci/run` installs both (scripts/install-emulators).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pgbunker::store::{Store, StoreError};
use sha2::{Digest, Sha256};

use crate::support::{pgbunker, stderr, World, KEY};

/// Azurite's well-known development account and key (public, in Microsoft's docs;
/// object_store uses the same when `AZURE_STORAGE_USE_EMULATOR` is set).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// One emulator process on a free loopback port, killed on drop; its data lives in a
/// temp folder removed with it.
struct Emulator {
    child: Child,
    port: u16,
    kind: Kind,
    _data: tempfile::TempDir,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Azurite,
    Gcs,
}

impl Kind {
    fn program(self) -> String {
        let (var, default) = match self {
            Kind::Azurite => ("PGBUNKER_AZURITE", "azurite-blob"),
            Kind::Gcs => ("PGBUNKER_GCS_EMULATOR", "gcp-storage-emulator"),
        };
        std::env::var(var)
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| default.into())
    }

    fn hint(self) -> &'static str {
        match self {
            Kind::Azurite => {
                "npm install -g azurite (or set PGBUNKER_AZURITE=/path/to/azurite-blob); \
                 scripts/install-emulators installs both emulators"
            }
            Kind::Gcs => {
                "pip install gcp-storage-emulator (or set \
                 PGBUNKER_GCS_EMULATOR=/path/to/gcp-storage-emulator); \
                 scripts/install-emulators installs both emulators"
            }
        }
    }
}

impl Emulator {
    fn start(kind: Kind) -> Emulator {
        Self::try_start(kind).unwrap_or_else(|e| {
            panic!(
                "could not start the {kind:?} emulator ({}): {e}\nhint: {}",
                kind.program(),
                kind.hint()
            )
        })
    }

    fn try_start(kind: Kind) -> Result<Emulator, String> {
        let program = kind.program();
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let port_s = port.to_string();
        let dir = data.path().to_str().unwrap().to_owned();
        let mut cmd = Command::new(&program);
        match kind {
            Kind::Azurite => cmd.args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port_s,
                "--location",
                &dir,
                "--silent",
                "--disableTelemetry",
            ]),
            Kind::Gcs => cmd
                .args(["start", "--host", "127.0.0.1", "--port", &port_s, "--quiet"])
                .args(["--in-memory"])
                .current_dir(&dir),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not run {program}: {e}"))?;
        let mut emu = Emulator {
            child,
            port,
            kind,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if emu.request("GET", "/", &[], b"").is_ok() {
                return Ok(emu);
            }
            if let Ok(Some(status)) = emu.child.try_wait() {
                return Err(format!("{program} exited with {status} before answering"));
            }
            if Instant::now() > deadline {
                return Err(format!("{program} did not answer within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment object_store (in this process and in pgbunker) needs to reach
    /// this emulator. No variable holds a real secret.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self.kind {
            Kind::Azurite => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
                ("AZURITE_BLOB_STORAGE_URL", self.endpoint()),
            ],
            Kind::Gcs => vec![
                (
                    "GOOGLE_SERVICE_ACCOUNT_KEY",
                    serde_json::json!({
                        "private_key": "",
                        "private_key_id": "",
                        "client_email": "",
                        "gcs_base_url": self.endpoint(),
                        "disable_oauth": true,
                    })
                    .to_string(),
                ),
                ("GOOGLE_ALLOW_HTTP", "true".into()),
            ],
        }
    }

    /// Sets [`Emulator::env`] in this process, for `Store` calls made by the test
    /// itself (nextest runs each test in its own process).
    fn set_env(&self) {
        for (k, v) in self.env() {
            std::env::set_var(k, v);
        }
    }

    fn repo_url(&self, bucket: &str, prefix: &str) -> String {
        match self.kind {
            Kind::Azurite => format!("az://{bucket}/{prefix}"),
            Kind::Gcs => format!("gs://{bucket}/{prefix}"),
        }
    }

    /// Creates a container (Azurite, a signed request) or a bucket (GCS emulator,
    /// which checks no credentials): pgbunker never creates them itself.
    fn create_bucket(&self, name: &str) {
        let (status, body) = match self.kind {
            Kind::Azurite => {
                let date = time::OffsetDateTime::now_utc()
                    .format(time::macros::format_description!(
                        "[weekday repr:short], [day] [month repr:short] [year] \
                         [hour]:[minute]:[second] GMT"
                    ))
                    .unwrap();
                let version = "2021-08-06";
                let to_sign = format!(
                    "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
                     /{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
                );
                use base64::Engine;
                let b64 = base64::engine::general_purpose::STANDARD;
                let sig = b64.encode(hmac_sha256(
                    &b64.decode(AZURITE_KEY).unwrap(),
                    to_sign.as_bytes(),
                ));
                let auth = format!("SharedKey {AZURITE_ACCOUNT}:{sig}");
                self.request(
                    "PUT",
                    &format!("/{AZURITE_ACCOUNT}/{name}?restype=container"),
                    &[
                        ("x-ms-date", &date),
                        ("x-ms-version", version),
                        ("Authorization", &auth),
                    ],
                    b"",
                )
            }
            Kind::Gcs => self.request(
                "POST",
                "/storage/v1/b?project=pgbunker-test",
                &[("Content-Type", "application/json")],
                serde_json::json!({ "name": name }).to_string().as_bytes(),
            ),
        }
        .unwrap_or_else(|e| panic!("creating bucket {name}: {e}"));
        assert!(
            (200..300).contains(&status),
            "creating bucket {name} answered HTTP {status}: {body}"
        );
    }

    /// One bare HTTP/1.1 request (connection closed after it); the status and body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        head += "\r\n";
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        Ok((status, body))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HMAC-SHA-256 (RFC 2104), for Azurite's shared-key signature.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

async fn store_contract(kind: Kind) {
    let emu = Emulator::start(kind);
    emu.create_bucket("conf");
    emu.set_env();
    let url = emu.repo_url("conf", "some/prefix");
    crate::support::bucket_contract(&url, &emu.repo_url("conf", "other")).await;
}

async fn backup_verify_restore(kind: Kind) {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let emu = Emulator::start(kind);
    emu.create_bucket("backups");
    let repo = emu.repo_url("backups", "clinic/prod");
    let emu_env = emu.env();
    let mut env: Vec<(&str, &str)> = vec![("PGBUNKER_KEY", KEY)];
    env.extend(emu_env.iter().map(|(k, v)| (*k, v.as_str())));
    crate::support::object_store_round_trip(&w, &repo, &env, || emu.set_env()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_contract_holds_on_azurite() {
    store_contract(Kind::Azurite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_verify_and_restore_through_azurite() {
    backup_verify_restore(Kind::Azurite).await;
}

/// gcp-storage-emulator (2026.7.19 from PyPI) emulates GCS's JSON API, while
/// object_store 0.12's GCS client writes, reads, inspects, lists and deletes objects
/// through the XML API, of which the emulator only has a stub `GET` and `PUT`. So
/// neither the store contract nor a backup can run against it; this test pins each
/// gap (so it fails, and the full contract above can take its place with
/// `store_contract(Kind::Gcs)` and `backup_verify_restore(Kind::Gcs)`, once an
/// emulator release closes them) and checks that what does reach the emulator works
/// and that pgbunker fails cleanly on the rest:
///
/// - `GET /<bucket>/<object>` answers without `Last-Modified` (object_store:
///   `MissingLastModified`), so no object can be read;
/// - `PUT /<bucket>/<object>` stores the object but answers without an `ETag`
///   (object_store: `MissingEtag`), so every put fails;
/// - the put ignores `x-goog-if-generation-match: 0`: a create-only put overwrites;
/// - `HEAD /<bucket>/<object>` answers 501 (object size);
/// - `GET /<bucket>?list-type=2` (listing) answers 501;
/// - `DELETE /<bucket>/<object>` answers 501;
/// - `POST /<bucket>/<object>?uploads` (XML multipart uploads) answers 501.
#[tokio::test(flavor = "multi_thread")]
async fn the_gcs_emulator_lacks_the_xml_api_object_store_uses() {
    let emu = Emulator::start(Kind::Gcs);
    emu.create_bucket("limits");
    emu.set_env();
    // The emulator's 501s are server errors, which object_store would retry for the
    // default three minutes.
    std::env::set_var("PGBUNKER_STORE_RETRY_TIMEOUT", "0");
    let store = Store::open(&emu.repo_url("limits", "repo")).unwrap();

    // What the emulator stores, read through its JSON API (the emulator's own view).
    let stored = |name: &str| {
        let (status, body) = emu
            .request(
                "GET",
                &format!("/storage/v1/b/limits/o/repo/{name}?alt=media"),
                &[],
                b"",
            )
            .unwrap();
        (status == 200).then_some(body)
    };
    let gap = |what: &str, r: Result<(), StoreError>, expect: &str| match r {
        Err(e @ StoreError::Backend { .. }) => {
            let text = format!("{e:?}");
            assert!(
                text.contains(expect),
                "{what}: expected {expect:?} in the error, got {text}"
            );
        }
        other => panic!(
            "{what}: the emulator's gap is gone ({other:?}); run the full contract on \
             it (store_contract(Kind::Gcs), backup_verify_restore(Kind::Gcs))"
        ),
    };

    // An object uploaded through the JSON API cannot be read back: the XML API's GET
    // answers without Last-Modified. A missing object is missing (404).
    let (status, body) = emu
        .request(
            "POST",
            "/upload/storage/v1/b/limits/o?uploadType=media&name=repo/seeded",
            &[("Content-Type", "application/octet-stream")],
            b"seeded bytes",
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    gap(
        "get",
        store.get("seeded").await.map(drop),
        "MissingLastModified",
    );
    assert!(store.get_opt("nope").await.unwrap().is_none());

    // The put lands but fails for want of an ETag.
    gap(
        "put",
        store.put_new("k", Bytes::from_static(b"first")).await,
        "MissingEtag",
    );
    assert_eq!(stored("k").as_deref(), Some("first"));
    // A create-only put over it is not refused: it overwrites.
    gap(
        "create-only put",
        store.put_new("k", Bytes::from_static(b"second")).await,
        "MissingEtag",
    );
    assert_eq!(
        stored("k").as_deref(),
        Some("second"),
        "the emulator now honours x-goog-if-generation-match"
    );
    gap("head", store.size("k").await.map(drop), "501");
    gap("list", store.list("").await.map(drop), "501");
    gap("delete", store.delete("k").await, "501");
    let (status, _) = emu
        .request("POST", "/limits/repo/big?uploads", &[], b"")
        .unwrap();
    assert_eq!(status, 501, "the emulator now has XML multipart uploads");

    // pgbunker fails cleanly (a repository error, not a crash) on such a store.
    let env: Vec<(&str, String)> = [
        ("PGBUNKER_KEY", KEY.to_owned()),
        ("PGBUNKER_STORE_RETRY_TIMEOUT", "0".to_owned()),
    ]
    .into_iter()
    .chain(emu.env())
    .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let o = pgbunker(&["init", "--repo", &emu.repo_url("limits", "init")], &env);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("ETag"), "{}", stderr(&o));
}

/// An emulator (or endpoint) that is not there: the hint names the variables that
/// set this backend's endpoint, not S3's `endpoint=` option.
#[test]
fn an_unanswered_azure_or_gcs_endpoint_names_its_own_settings() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let gcs_key = serde_json::json!({
        "private_key": "",
        "private_key_id": "",
        "client_email": "",
        "gcs_base_url": dead,
        "disable_oauth": true,
    })
    .to_string();
    for (repo, env, names) in [
        (
            "az://c/p",
            vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true"),
                ("AZURITE_BLOB_STORAGE_URL", dead.as_str()),
            ],
            "AZURITE_BLOB_STORAGE_URL",
        ),
        (
            "gs://b/p",
            vec![
                ("GOOGLE_SERVICE_ACCOUNT_KEY", gcs_key.as_str()),
                ("GOOGLE_ALLOW_HTTP", "true"),
            ],
            "gcs_base_url",
        ),
    ] {
        let mut env = env;
        env.extend([("PGBUNKER_KEY", KEY), ("PGBUNKER_STORE_RETRY_TIMEOUT", "0")]);
        let o = pgbunker(&["init", "--repo", repo], &env);
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("did not answer"), "{repo}: {err}");
        assert!(err.contains(names), "{repo}: {err}");
        assert!(!err.contains("endpoint="), "{repo}: {err}");
    }
}
