//! keymasterd: the signing and key-management service.

use clap::Parser;
use keymaster::config::{Config, DaemonArgs};
use keymaster::secret::Secret;

/// Long because it is the process's life in order: flags, logging,
/// the check-only mode, the runtime, the exit (`app::run` has shut the
/// token down in order by then).
fn main() -> std::process::ExitCode {
    // Take the PIN out of the environment at once, so that it is not
    // inherited or visible in /proc/PID/environ of children.
    let env_pin = std::env::var("KEYMASTER_PIN").ok().map(Secret::new);
    // SAFETY: single-threaded at this point; nothing else reads the
    // environment concurrently.
    unsafe { std::env::remove_var("KEYMASTER_PIN") };
    forbid_core_dumps();
    let args = DaemonArgs::parse();
    let check_only = args.check_config;
    let config = match Config::resolve(args, env_pin) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keymasterd: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // domain's TSIG middleware logs a refused MAC as FORMERR; keymaster
    // logs every TSIG refusal as answered (publish/dns.rs, TsigRefusals),
    // unless the operator asks for domain's own lines.
    let directives = match config.log.contains("domain") {
        true => config.log.clone(),
        false => format!("{},domain::net::server::middleware::tsig=error", config.log),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if config.log_json {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keymasterd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if check_only {
        return match runtime.block_on(keymaster::app::check(config)) {
            Ok(report) => {
                println!("{report}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("keymasterd: configuration refused: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let code = match runtime.block_on(keymaster::app::run(config)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("keymasterd: {e}");
            1
        }
    };
    // Exit without dropping the runtime: tasks still parked in it hold
    // the token, which `app::run` has already shut down in order; their
    // destructors would only unload the PKCS#11 module on some thread
    // while the process exits.
    std::process::exit(code)
}

/// Keeps the PIN and key material out of core dumps and away from ptrace
/// by other users' processes (PR_SET_DUMPABLE = 0).
fn forbid_core_dumps() {
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers and touches
    // no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        eprintln!("keymasterd: warning: could not forbid core dumps (prctl failed)");
    }
}
