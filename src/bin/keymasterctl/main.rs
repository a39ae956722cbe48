//! keymasterctl: the operator's command line for keymasterd (what
//! PowerShell's DnsServer DNSSEC cmdlets are on Windows). One file per
//! command group; `output` prints tables and JSON.

mod audit;
mod keys;
mod output;
mod roles;
mod sign;
mod zones;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keymaster::proto::audit_client::AuditClient;
use keymaster::proto::key_master_client::KeyMasterClient;
use keymaster::proto::signer_client::SignerClient;
use keymaster::proto::zones_client::ZonesClient;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(
    name = "keymasterctl",
    version,
    about = "Manage DNSSEC zones and keys held by keymasterd"
)]
struct Cli {
    #[command(flatten)]
    client: keymaster::grpc::client::ClientArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Zones: add, show, list, remove, sign, rekey.
    #[command(subcommand)]
    Zone(Box<zones::ZoneCmd>),
    /// Keys of a zone: list, add, retire, remove.
    #[command(subcommand)]
    Key(keys::KeyCmd),
    /// DS records and the DNSKEY RRset, for the parent or a registrar.
    Ds {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// Digest algorithms: sha256, sha384 (comma-separated).
        #[arg(long, value_delimiter = ',')]
        digest: Vec<String>,
    },
    /// The signed DNSKEY RRset.
    Dnskey {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// What a validator needs to trust the zone directly (its KSKs):
    /// `unbound` (trust-anchor: lines for unbound.conf), `bind` (a
    /// trust-anchors statement), `ds` (a dsset file), `keyset` (the KSKs'
    /// DNSKEY records: a keyset file, or Unbound's trust-anchor-file).
    TrustAnchor {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// unbound (trust-anchor: lines), bind (trust-anchors statement), ds (a dsset file) or keyset (the KSKs' DNSKEY records).
        #[arg(long, default_value = "unbound")]
        format: String,
        /// Digest algorithms of the DS records: sha256, sha384.
        #[arg(long, value_delimiter = ',')]
        digest: Vec<String>,
    },
    /// The signed CDS and CDNSKEY RRsets (empty unless the zone publishes them).
    Cds {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Compare signing through gRPC with signing directly through PKCS#11.
    Bench(keymaster::bench::BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell), e.g. `keymasterctl completions bash > /etc/bash_completion.d/keymasterctl`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Registered nodes.
    #[command(subcommand)]
    Node(roles::NodeCmd),
    /// The Key Master role of a zone: show, candidates, transfer, seize.
    #[command(subcommand)]
    Role(roles::RoleCmd),
    /// The audit log; `audit verify` checks its hash chain.
    Audit(audit::AuditArgs),
}

/// A client of each service, on one channel.
pub struct Clients {
    pub zones: ZonesClient<Channel>,
    pub signer: SignerClient<Channel>,
    pub roles: KeyMasterClient<Channel>,
    pub audit: AuditClient<Channel>,
}

impl Clients {
    fn new(channel: Channel) -> Clients {
        Clients {
            audit: AuditClient::new(channel.clone()).max_decoding_message_size(usize::MAX),
            roles: KeyMasterClient::new(channel.clone()),
            zones: ZonesClient::new(channel.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            signer: SignerClient::new(channel),
        }
    }
}

fn main() -> ExitCode {
    // Output into a pipe whose reader has gone (`keymasterctl … | head -1`)
    // ends the process quietly, as for other command-line tools; Rust
    // ignores SIGPIPE, and `println!` would panic on the write error.
    // SAFETY: signal(2) with a constant handler, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        // Into memory first: clap_complete panics on a write error (a
        // closed pipe), and a shell script is small.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, "keymasterctl", &mut script);
        let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keymasterctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keymasterctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line for a failed call: the status code and its message.
pub fn status_line(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// A call's answer, or its refusal as `status_line` says it.
pub trait Answer<T> {
    fn answer(self) -> Result<T, String>;
}

impl<T> Answer<T> for Result<tonic::Response<T>, tonic::Status> {
    fn answer(self) -> Result<T, String> {
        self.map(tonic::Response::into_inner).map_err(status_line)
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Command::Bench(args) = cli.command {
        return keymaster::bench::run(&cli.client, args).await;
    }
    let mut c = Clients::new(keymaster::grpc::client::connect(&cli.client).await?);
    let out = match cli.command {
        Command::Zone(cmd) => zones::run(&mut c, *cmd).await?,
        Command::Key(cmd) => keys::run(&mut c, cmd).await?,
        Command::Ds { zone, digest } => keys::ds(&mut c, zone, digest).await?,
        Command::Dnskey { zone } => keys::dnskey(&mut c, zone).await?,
        Command::TrustAnchor {
            zone,
            format,
            digest,
        } => keys::trust_anchor(&mut c, zone, &format, digest).await?,
        Command::Cds { zone } => keys::cds(&mut c, zone).await?,
        Command::Node(cmd) => roles::run_node(&mut c, cmd).await?,
        Command::Role(cmd) => roles::run(&mut c, cmd).await?,
        Command::Audit(args) => return audit::run(&mut c, args, cli.json).await,
        Command::Bench(_) | Command::Completions { .. } => unreachable!("handled above"),
    };
    out.print(cli.json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag and argument of every command says what it is, and a
    /// flag with a fixed set of values lists them.
    #[test]
    fn every_flag_has_help_text() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in c.get_subcommands() {
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(
            &<Cli as clap::CommandFactory>::command(),
            "keymasterctl",
            &mut missing,
        );
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }
}
