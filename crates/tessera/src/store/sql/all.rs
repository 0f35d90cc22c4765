// Every entity's operations, in the order the engines compile them (each engine includes this
// file once, after defining its `operations!`).
include!("engine.rs");
include!("meta.rs");
include!("clients.rs");
include!("users.rs");
include!("keys.rs");
include!("revocations.rs");
include!("audit.rs");
include!("changes.rs");
include!("sign_in.rs");
include!("transfer.rs");
include!("assertions.rs");
include!("trust.rs");
include!("registrations.rs");
include!("device.rs");
