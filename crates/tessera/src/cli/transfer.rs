//! `tessera export` and `tessera import`: move a store to another.

use crate::config::Settings;
use crate::signing;
use crate::store::Store;
use std::process::ExitCode;

pub(super) async fn export_command(store: &Store, output: &std::path::Path) -> anyhow::Result<ExitCode> {
    use crate::transfer;
    let count = if output.as_os_str() == "-" {
        transfer::export(store, &mut std::io::BufWriter::new(std::io::stdout().lock())).await?
    } else {
        // The file holds secret hashes and sealed keys: private from the start.
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(output)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", output.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let written = match transfer::export(store, &mut out).await {
            Ok(count) => out
                .into_inner()
                .map_err(|e| anyhow::anyhow!("{e}"))
                .and_then(|f| Ok(f.sync_all()?))
                .map(|()| count),
            Err(e) => Err(e),
        };
        // A partial export is worse than none: it would import as a smaller store.
        written.inspect_err(|_| {
            let _ = std::fs::remove_file(output);
        })?
    };
    eprintln!("exported {count} records");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn import_command(
    store: &Store,
    settings: &Settings,
    input: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use crate::transfer;
    let records = if input.as_os_str() == "-" {
        transfer::read(std::io::stdin().lock())?
    } else {
        let file = std::fs::File::open(input)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", input.display()))?;
        transfer::read(std::io::BufReader::new(file))?
    };
    // The nodes of the target store must open its keys: check this node's master key now,
    // before anything is written, rather than at their start.
    let source = match &settings.master_key {
        crate::keys::MasterKeySource::File { path, .. } => crate::keys::MasterKeySource::File {
            path: path.clone(),
            create: false,
        },
        other => other.clone(),
    };
    let master = signing::master_key(&source, store).await?;
    for r in &records {
        if let crate::store::Record::Key(k) = r {
            if master.open(&k.kid, &k.sealed_private_key).is_err() {
                anyhow::bail!(
                    "the master key ({:?}) cannot open signing key {} in the export: give import \
                     the master key of the old store (--master-key-file or TESSERA_MASTER_KEY)",
                    settings.master_key,
                    k.kid
                );
            }
        }
    }
    store.import(&records).await?;
    eprintln!("imported {} records", records.len());
    Ok(ExitCode::SUCCESS)
}
