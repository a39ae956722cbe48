//! `keymasterctl zone sign`: the master file streamed to the service, the
//! signed zone written as it comes back. Neither side holds the whole file.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use keymaster::proto::zones_client::ZonesClient;
use keymaster::proto::{self, sign_zone_request, sign_zone_response};
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::output::Output;
use crate::{status_line, Answer};

pub async fn sign_zone(
    zones: &mut ZonesClient<Channel>,
    zone: String,
    input: PathBuf,
    output: PathBuf,
    inception: u32,
    expiration: u32,
) -> Result<Output, String> {
    let start = proto::SignZoneStart {
        zone: zone.clone(),
        inception,
        expiration,
    };
    let (requests, reading) = stream_input(&input, start)?;
    let stream = zones.sign_zone(requests).await.answer()?;
    reading.await.map_err(|e| e.to_string())??;
    let to_stdout = output.as_os_str() == "-";
    let s = write_output(stream, &output, to_stdout).await?;
    for note in &s.notes {
        eprintln!("note: {note}");
    }
    let text = format!(
        "signed {zone}: {} records in, {} out, {} RRSIGs in {:.2} s ({:.0} RRSIGs/s)",
        s.records_in,
        s.records_out,
        s.rrsigs,
        s.seconds,
        s.rrsigs as f64 / s.seconds.max(1e-9)
    );
    if to_stdout {
        // Standard output carries the zone; the summary goes to stderr.
        eprintln!("{text}");
        return Ok(Output::Nothing);
    }
    let v = json!({
        "zone": zone, "records_in": s.records_in, "records_out": s.records_out,
        "rrsigs": s.rrsigs, "seconds": s.seconds, "notes": s.notes,
    });
    Ok(Output::Value(v, text))
}

type Reading = tokio::task::JoinHandle<Result<(), String>>;

/// The request stream: `start`, then the input ("-": standard input) in
/// 1 MiB chunks, read on a blocking thread.
fn stream_input(
    input: &Path,
    start: proto::SignZoneStart,
) -> Result<(ReceiverStream<proto::SignZoneRequest>, Reading), String> {
    let mut reader: Box<dyn Read + Send> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(input)
                .map_err(|e| format!("cannot read {}: {e}", input.display()))?,
        )
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<proto::SignZoneRequest>(8);
    let reading = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let start = proto::SignZoneRequest {
            msg: Some(sign_zone_request::Msg::Start(start)),
        };
        if tx.blocking_send(start).is_err() {
            return Ok(());
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("read error: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            let chunk = proto::SignZoneRequest {
                msg: Some(sign_zone_request::Msg::Chunk(buf[..n].to_vec())),
            };
            if tx.blocking_send(chunk).is_err() {
                return Ok(()); // the call ended; its status says why
            }
        }
    });
    Ok((ReceiverStream::new(rx), reading))
}

/// Writes the signed zone as it comes (to `OUTPUT.partial`, renamed at the
/// end, so a failed run never leaves a half-signed zone under the final
/// name), drawing progress on a terminal; returns the summary.
async fn write_output(
    mut stream: tonic::Streaming<proto::SignZoneResponse>,
    output: &Path,
    to_stdout: bool,
) -> Result<proto::SignZoneSummary, String> {
    let tmp = output.with_extension("partial");
    let mut writer: Box<dyn Write> = if to_stdout {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&tmp)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?,
        ))
    };
    let show_progress = !to_stdout && std::io::stdout().is_terminal();
    let mut summary = None;
    let failed = loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => break None,
            Err(s) => break Some(status_line(s)),
        };
        match msg.msg {
            Some(sign_zone_response::Msg::Chunk(c)) => writer
                .write_all(&c)
                .map_err(|e| format!("write error: {e}"))?,
            Some(sign_zone_response::Msg::Progress(p)) if show_progress => {
                draw_progress(p.signed_rrsets, p.total_rrsets)
            }
            Some(sign_zone_response::Msg::Summary(s)) => summary = Some(s),
            _ => {}
        }
    };
    if show_progress {
        println!();
    }
    if let Some(e) = failed {
        drop(writer);
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    writer.flush().map_err(|e| format!("write error: {e}"))?;
    drop(writer);
    let s = summary.ok_or("the service ended the stream without a summary")?;
    if !to_stdout {
        std::fs::rename(&tmp, output).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                tmp.display(),
                output.display()
            )
        })?;
    }
    Ok(s)
}

fn draw_progress(done: u64, total: u64) {
    let width = 40u64;
    let filled = (done * width).checked_div(total).unwrap_or(0);
    print!(
        "\r[{}{}] {done}/{total} RRsets",
        "#".repeat(filled as usize),
        " ".repeat((width - filled) as usize)
    );
    let _ = std::io::stdout().flush();
}
