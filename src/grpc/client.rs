//! Connecting to keymasterd: over TLS with a client certificate for an
//! `https://` URL, plaintext for `http://` (development only).

use std::path::PathBuf;

use clap::Args;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How a client finds and authenticates to keymasterd.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// keymasterd to talk to: https://HOST:PORT (TLS), or http:// for a
    /// development server started with --insecure-plaintext.
    #[arg(
        long,
        global = true,
        env = "KEYMASTER_SERVER",
        default_value = "https://127.0.0.1:7353"
    )]
    pub server: String,
    /// CA (PEM) that signed the server's certificate.
    #[arg(long = "ca", id = "client_ca", global = true, env = "KEYMASTER_CA")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(
        long = "cert",
        id = "client_cert",
        global = true,
        env = "KEYMASTER_CERT"
    )]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[arg(long = "key", id = "client_key", global = true, env = "KEYMASTER_KEY")]
    pub key: Option<PathBuf>,
    /// Name to expect in the server's certificate (default: the URL's host).
    #[arg(long, global = true, env = "KEYMASTER_SERVER_NAME")]
    pub server_name: Option<String>,
}

fn read(path: &Option<PathBuf>, what: &str) -> Result<Vec<u8>, String> {
    let p = path.as_ref().ok_or_else(|| {
        format!(
            "an https:// server needs --{what} (or KEYMASTER_{})",
            what.to_uppercase()
        )
    })?;
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// Connects to the server.
pub async fn connect(args: &ClientArgs) -> Result<Channel, String> {
    let mut endpoint = Endpoint::from_shared(args.server.clone())
        .map_err(|e| format!("bad server URL {:?}: {e}", args.server))?
        .tcp_nodelay(true);
    if args.server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&args.ca, "ca")?))
            .identity(Identity::from_pem(
                read(&args.cert, "cert")?,
                read(&args.key, "key")?,
            ));
        if let Some(name) = &args.server_name {
            tls = tls.domain_name(name.clone());
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("TLS settings: {e}"))?;
    }
    endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot reach keymasterd at {}: {e}", args.server))
}
