//! Generates the protobuf types of `proto/cyclon.proto` with `prost-build`.
//! The schema is compiled by the pure-Rust `protox`, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/cyclon.proto");
    let descriptors = protox::compile(["proto/cyclon.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
