//! Noticing when watched workspace files change while a job runs.

use std::path::Path;
use std::time::SystemTime;

use compute::WorkspacePath;

/// The last seen state of each watched file: size and modification time.
pub(crate) struct Watcher {
    files: Vec<(WorkspacePath, Option<(u64, SystemTime)>)>,
}

impl Watcher {
    /// Starts from the files' current state, so that only changes made by the job
    /// are reported.
    pub(crate) fn new(root: &Path, paths: &[WorkspacePath]) -> Self {
        let files = paths.iter().map(|p| (p.clone(), signature(&p.under(root)))).collect();
        Watcher { files }
    }

    /// The files whose size or modification time changed since the last call.
    pub(crate) fn changed(&mut self, root: &Path) -> Vec<WorkspacePath> {
        let mut changed = Vec::new();
        for (path, seen) in &mut self.files {
            let now = signature(&path.under(root));
            if now.is_some() && now != *seen {
                changed.push(path.clone());
            }
            *seen = now;
        }
        changed
    }
}

fn signature(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = WorkspacePath::new("out/detailed_results.html").unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::write(path.under(dir.path()), "old").unwrap();
        let mut watcher = Watcher::new(dir.path(), std::slice::from_ref(&path));
        assert!(watcher.changed(dir.path()).is_empty(), "existing content is not news");
        std::fs::write(path.under(dir.path()), "version two").unwrap();
        assert_eq!(watcher.changed(dir.path()), vec![path.clone()]);
        assert!(watcher.changed(dir.path()).is_empty());
        std::fs::remove_file(path.under(dir.path())).unwrap();
        assert!(watcher.changed(dir.path()).is_empty(), "a removed file is not reported");
    }
}
