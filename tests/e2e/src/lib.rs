//! The test bed: a real kube-apiserver + etcd (the envtest recipe), the EC2/KMS emulator and
//! the controller binary as child processes, for the end-to-end tests and `make env-up`.
//!
//! Every child is spawned through `hack/reap-with-parent.sh` so it dies with the test process,
//! even when that is killed; `testbed up` starts them detached instead.

pub mod bed;
pub mod bench;
pub mod certs;
pub mod control_plane;
pub mod controller;
pub mod emulator;
pub mod helm;
pub mod migration_setup;
pub mod paths;
pub mod process;
pub mod prometheus;
pub mod sockets;
pub mod wait;

pub use bed::Bed;
pub use control_plane::{ControlPlane, ControlPlaneOptions, new_namespace, shared};
pub use controller::ControllerProcess;
pub use emulator::{Calls, Emulator, Fault, FaultKind, IamUser};
pub use helm::{Helm, Rendered};
pub use wait::{eventually, retry};

/// Installs rustls' ring provider as the process default (once; a no-op if some provider is
/// installed already). Both ring (kube) and aws-lc-rs (the AWS SDK) are compiled in, so
/// rustls cannot pick one by itself and panics on the first TLS config built without one.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}
