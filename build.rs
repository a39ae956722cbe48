//! Generates the gRPC client and server code from `proto/`, and the
//! descriptor set that server reflection serves.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // For server reflection: generic gRPC tools list and call the API.
        .file_descriptor_set_path(out.join("keymaster_descriptor.bin"))
        .compile_protos(&["proto/keymaster/v1/keymaster.proto"], &["proto"])?;
    Ok(())
}
