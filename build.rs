//! Generates the protobuf types of `proto/cyclon.proto` (the wire format),
//! `proto/cyclon_v2.proto` (`/cyclon/2.0.0`) and `proto/peer_record.proto` (the payload of the
//! local peer's signed record) with
//! `prost-build`. The schemas are compiled by the pure-Rust `protox`, so no system `protoc` is
//! needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/cyclon.proto");
    println!("cargo:rerun-if-changed=proto/peer_record.proto");
    println!("cargo:rerun-if-changed=proto/cyclon_v2.proto");
    let descriptors = protox::compile(
        [
            "proto/cyclon.proto",
            "proto/peer_record.proto",
            "proto/cyclon_v2.proto",
        ],
        ["proto"],
    )?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
