//! The demo Servicekonto (`kopplung idp-sim`) as the identity provider of a portal under
//! test: its own process with its own keys, the portal as its client `portal`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::oidc::{CLIENT_ID, Provider};
use crate::{Process, free_port, kopplung_bin, private_dir, write_private};

/// Writes the configuration file `config` of a demo Servicekonto (`issuer`, `listen`)
/// whose one client `portal`, shown as `name`, signs citizens in for the portal at
/// `portal_url`; its `secret` goes to `clients/portal-secret` in `data`.
pub fn write_config(
    config: &Path,
    data: &Path,
    (issuer, listen): (&str, &str),
    name: &str,
    portal_url: &str,
    secret: &str,
) {
    private_dir(&data.join("clients"));
    write_private(&data.join("clients/portal-secret"), secret.as_bytes());
    std::fs::write(
        config,
        format!(
            r#"issuer = "{issuer}"
listen = "{listen}"

[[client]]
client_id = "{CLIENT_ID}"
name = "{name}"
secret_file = "clients/portal-secret"
redirect_uris = ["{portal_url}/konto/oidc/rueckkehr"]
post_logout_redirect_uris = ["{portal_url}/"]
"#
        ),
    )
    .expect("the Servicekonto's configuration");
}

/// A running `kopplung idp-sim`.
pub struct Servicekonto(Provider);

impl std::ops::Deref for Servicekonto {
    type Target = Provider;
    fn deref(&self) -> &Provider {
        &self.0
    }
}

impl Servicekonto {
    /// Starts the demo Servicekonto for a portal at `portal_url`, its files below `dir`.
    pub async fn start(portal_url: &str, dir: &Path) -> Self {
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let data = dir.join("servicekonto");
        let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let config = dir.join("servicekonto.toml");
        write_config(
            &config,
            &data,
            (&issuer, &format!("127.0.0.1:{port}")),
            "Serviceportal (Test)",
            portal_url,
            &secret,
        );
        let log = dir.join("servicekonto.log");
        let process = Process(
            Command::new(kopplung_bin())
                .args(["idp-sim", "--config"])
                .arg(&config)
                .arg("--data-dir")
                .arg(&data)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("servicekonto log"))
                .spawn()
                .expect("kopplung idp-sim"),
        );
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(answer) = reqwest::get(&discovery).await
                && answer.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < until,
                "kopplung idp-sim did not come up:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self(Provider {
            issuer,
            secret_file: data.join("clients/portal-secret"),
            log,
            _process: process,
        })
    }
}
