//! Generates the CRI v1 gRPC clients from `proto/runtime/v1/api.proto`
//! (upstream's `k8s.io/cri-api`, see `proto/README.md`). The proto is parsed
//! by `protox`, so building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/runtime/v1/api.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
