//! The small runtime behind the blocking APIs of `tessera-client` and `tessera-verify` (feature
//! `blocking`): one worker thread of its own, each call run there as a task and awaited over a
//! channel, so that a call works from any thread that may block (a `spawn_blocking` thread
//! included), and dropping it never blocks (dropping a runtime normally does, which panics
//! inside async code).
//!
//! ```
//! let rt = tessera_proto::blocking::Runtime::new("example").unwrap();
//! assert_eq!(rt.run(async { 40 + 2 }), Some(42));
//! ```

/// A one-worker Tokio runtime, shut down in the background when dropped.
#[derive(Debug)]
pub struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    /// Starts the runtime; its thread is called `thread_name`.
    pub fn new(thread_name: &str) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name)
            .enable_all()
            .build()?;
        Ok(Runtime(Some(rt)))
    }

    /// Runs `future` on the runtime and waits for it on this thread; `None` if the runtime has
    /// stopped.
    pub fn run<T: Send + 'static>(
        &self,
        future: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let rt = self.0.as_ref()?;
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().ok()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
