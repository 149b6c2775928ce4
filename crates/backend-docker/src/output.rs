//! Copying a container's attached output streams into workspace files.

use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

/// How long written output may sit in a buffer before it is flushed to the file, so
/// that someone reading the file while the program runs sees recent lines.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
const BUFFER: usize = 64 * 1024;

/// Where each stream goes; `None` discards it.
pub(crate) struct Sinks {
    pub(crate) stdout: Option<tokio::fs::File>,
    pub(crate) stderr: Option<tokio::fs::File>,
}

/// Copies the multiplexed stream until it ends. Memory stays at two buffers whatever
/// the container prints: a slow disk slows the reader, and the engine in turn holds
/// the container's writes.
pub(crate) async fn pump<S>(mut stream: S, sinks: Sinks) -> std::io::Result<u64>
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut stdout = sinks.stdout.map(|f| BufWriter::with_capacity(BUFFER, f));
    let mut stderr = sinks.stderr.map(|f| BufWriter::with_capacity(BUFFER, f));
    let mut copied = 0u64;
    let mut dirty = false;
    loop {
        tokio::select! {
            item = stream.next() => {
                let Some(item) = item else { break };
                let (sink, bytes) = match item {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        (stdout.as_mut(), message)
                    }
                    Ok(LogOutput::StdErr { message }) => (stderr.as_mut(), message),
                    Ok(LogOutput::StdIn { .. }) => continue,
                    // The connection to the engine broke; what arrived so far is kept.
                    Err(e) => {
                        tracing::debug!(error = %e, "output stream ended with an error");
                        break;
                    }
                };
                copied += bytes.len() as u64;
                if let Some(sink) = sink {
                    sink.write_all(&bytes).await?;
                    dirty = true;
                }
            }
            () = tokio::time::sleep(FLUSH_EVERY), if dirty => {
                flush(&mut stdout).await?;
                flush(&mut stderr).await?;
                dirty = false;
            }
        }
    }
    flush(&mut stdout).await?;
    flush(&mut stderr).await?;
    Ok(copied)
}

async fn flush<W: AsyncWrite + Unpin>(w: &mut Option<W>) -> std::io::Result<()> {
    match w {
        Some(w) => w.flush().await,
        None => Ok(()),
    }
}
