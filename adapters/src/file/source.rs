use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use tokio::sync::watch;

use super::name::MANIFEST_SUFFIX;
use crate::transport::AnswerFolder;

/// What became of one event file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// Taken (or recognised as a duplicate): moved to `taken/`.
    Taken,
    /// Refused for good: moved to `refused/`, with this problem document (JSON) beside
    /// it as `<name>.problem.json`, so the procedure learns why without a network API.
    Refused(Vec<u8>),
    /// Not now (store unavailable, a decision before its receipt): left in place.
    Later,
}

/// Takes the content of one event file.
pub type AnswerHandler = crate::BodyHandler<Answered>;

/// Looks into every folder until `shutdown` turns true, handing each complete file to
/// its handler, oldest first. Files larger than `max_bytes` are refused unread.
pub async fn watch_answers(
    folders: Vec<(String, AnswerFolder, AnswerHandler)>,
    max_bytes: u64,
    shutdown: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for (procedure, folder, handle) in folders {
        tasks.spawn(watch_one(
            procedure,
            folder,
            handle,
            max_bytes,
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn watch_one(
    procedure: String,
    folder: AnswerFolder,
    handle: AnswerHandler,
    max_bytes: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    // Said once per file and once per outage, not at every look.
    let mut waiting: HashSet<String> = HashSet::new();
    let mut unreadable = false;
    while !*shutdown.borrow() {
        match waiting_files(&folder.path).await {
            Ok(files) => {
                unreadable = false;
                for (name, size) in files {
                    if *shutdown.borrow() {
                        return;
                    }
                    let answered = take(&folder.path, &name, size, max_bytes, &handle).await;
                    match answered {
                        Ok(Answered::Later) => {
                            if waiting.insert(name.clone()) {
                                tracing::info!(%procedure, file = %name, "event file left for a later look");
                            }
                        }
                        Ok(Answered::Taken) => {
                            waiting.remove(&name);
                            tracing::info!(%procedure, file = %name, "event file taken");
                        }
                        Ok(Answered::Refused(_)) => {
                            waiting.remove(&name);
                            tracing::warn!(%procedure, file = %name, "event file refused; the reason is beside it in refused/");
                        }
                        Err(e) => {
                            tracing::warn!(%procedure, file = %name, error = %e, "event file not moved; looked at again")
                        }
                    }
                }
            }
            Err(e) => {
                if !unreadable {
                    tracing::warn!(%procedure, folder = %folder.path.display(), error = %e, "cannot look into the incoming folder");
                }
                unreadable = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(folder.poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The complete event files of `folder`, oldest first: regular files whose names are
/// not hidden (a procedure's temporary file) and not ours.
async fn waiting_files(folder: &Path) -> std::io::Result<Vec<(String, u64)>> {
    plain_folder(folder).await?;
    let mut entries = tokio::fs::read_dir(folder).await?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(MANIFEST_SUFFIX) {
            continue;
        }
        let metadata = entry.metadata().await?;
        if !metadata.is_file() {
            continue;
        }
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        files.push((modified, name, metadata.len()));
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|(_, name, size)| (name, size))
        .collect())
}

/// Hands one file to `handle` and moves it as the answer says.
async fn take(
    folder: &Path,
    name: &str,
    size: u64,
    max_bytes: u64,
    handle: &AnswerHandler,
) -> std::io::Result<Answered> {
    let path = folder.join(name);
    let content = if size > max_bytes {
        None
    } else {
        read_regular(&path, max_bytes).await?
    };
    let answered = match content {
        Some(content) => handle(content).await,
        None => Answered::Refused(too_large(max_bytes)),
    };
    match &answered {
        Answered::Taken => move_into(folder, "taken", name).await?,
        Answered::Refused(problem) => {
            let refused = subfolder(folder, "refused").await?;
            write_fresh(&refused.join(format!("{name}.problem.json")), problem).await?;
            move_into(folder, "refused", name).await?;
        }
        Answered::Later => {}
    }
    Ok(answered)
}

/// Reads the regular file the listing found — not what a link or a pipe put in its place
/// since — and never more than `max_bytes`: `None` if it grew beyond them.
pub(super) async fn read_regular(path: &Path, max_bytes: u64) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).unwrap_or(0))
        .open(path)
        .await?;
    if !file.metadata().await?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut content = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut content)
        .await?;
    Ok((u64::try_from(content.len()).unwrap_or(u64::MAX) <= max_bytes).then_some(content))
}

/// Writes a new file at `path`: what lies there (a planted link too) is removed, never
/// written through — the procedure may write into these folders.
async fn write_fresh(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await?;
    file.write_all(content).await
}

/// Fails unless `folder` is a folder of its own, not a link: the procedure may write
/// beside it, and a link put in its place would let the hub read, move and write files
/// elsewhere (its own data among them).
async fn plain_folder(folder: &Path) -> std::io::Result<()> {
    let metadata = tokio::fs::symlink_metadata(folder).await?;
    if metadata.is_dir() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{} is a link or a file, not a folder: nothing is read from it or moved into it",
            folder.display()
        )))
    }
}

/// `folder/sub`, created if missing; never a link.
async fn subfolder(folder: &Path, sub: &str) -> std::io::Result<std::path::PathBuf> {
    let target = folder.join(sub);
    match tokio::fs::create_dir(&target).await {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    plain_folder(&target).await?;
    Ok(target)
}

async fn move_into(folder: &Path, sub: &str, name: &str) -> std::io::Result<()> {
    let target = subfolder(folder, sub).await?;
    match tokio::fs::rename(folder.join(name), target.join(name)).await {
        // Another instance of the hub took it meanwhile: taken either way.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The problem document for a file too large to read.
fn too_large(max_bytes: u64) -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({
        "type": "urn:kopplung:problem:too-large",
        "title": "The event file is too large",
        "status": 413,
        "detail": format!("an event file may have at most {max_bytes} bytes"),
    }))
    .unwrap_or_default()
}
