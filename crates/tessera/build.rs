//! Computes, at build time, the SHA-256 of the stylesheet the sign-in pages inline, for their
//! `Content-Security-Policy: style-src 'sha256-…'` (the one style the pages may apply).

use std::process::ExitCode;

use base64::Engine;
use sha2::{Digest, Sha256};

fn main() -> ExitCode {
    let path = "templates/interaction/style.css";
    println!("cargo::rerun-if-changed={path}");
    let css = match std::fs::read(path) {
        Ok(css) => css,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&css));
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("style_hash.rs");
    let code = format!(
        "/// SHA-256 of `templates/interaction/style.css`, base64.\nconst STYLE_SHA256: &str = {hash:?};\n"
    );
    if let Err(e) = std::fs::write(&out, code) {
        eprintln!("{}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
