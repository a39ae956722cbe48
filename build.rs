//! Generates the gRPC client and server code from `proto/`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/keymaster/v1/keymaster.proto"], &["proto"])?;
    Ok(())
}
