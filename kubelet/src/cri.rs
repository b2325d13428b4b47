//! The Container Runtime Interface v1 over a unix socket: the generated
//! bindings ([`v1`]) and [`Runtime`], the two CRI services on one channel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

/// Generated from upstream's `runtime/v1/api.proto` by `build.rs`.
#[allow(clippy::all, unreachable_pub, missing_docs)]
pub mod v1 {
    tonic::include_proto!("runtime.v1");
}

use v1::image_service_client::ImageServiceClient;
use v1::runtime_service_client::RuntimeServiceClient;

/// Responses such as ListImages or ListContainers grow with what the runtime
/// holds; upstream's kubelet allows 16 MiB.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the container runtime at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("CRI {call}: {status}")]
    Call {
        call: &'static str,
        #[source]
        status: tonic::Status,
    },
}

impl Error {
    /// The gRPC code of a failed call (`Unknown` for a connection error).
    pub fn code(&self) -> tonic::Code {
        match self {
            Error::Call { status, .. } => status.code(),
            Error::Connect { .. } => tonic::Code::Unavailable,
        }
    }

    /// The runtime's message for a failed call.
    pub fn message(&self) -> String {
        match self {
            Error::Call { status, .. } => status.message().to_string(),
            Error::Connect { source, .. } => source.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Tags a failed call with its name.
pub(crate) fn call(name: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Call { call: name, status }
}

/// The runtime and image services of one container runtime. Cloning is cheap:
/// the clones share the connection.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
}

impl Runtime {
    /// Connects to the runtime's unix socket (`unix://` prefix optional). The
    /// channel reconnects by itself when the runtime restarts.
    pub async fn connect(address: &Path) -> Result<Self> {
        let path = address
            .to_str()
            .and_then(|s| s.strip_prefix("unix://"))
            .map(PathBuf::from)
            .unwrap_or_else(|| address.to_path_buf());
        let socket = path.clone();
        // The URI is required by the API but never dialed: the connector
        // below always opens the socket.
        let channel = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(tower::service_fn(move |_| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|source| Error::Connect { path, source })?;
        Ok(Self {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            images: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE),
        })
    }

    /// The runtime's name, version and CRI version.
    pub async fn version(&self) -> Result<v1::VersionResponse> {
        Ok(self
            .runtime
            .clone()
            .version(v1::VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(call("Version"))?
            .into_inner())
    }
}
