//! Turning workspace-relative paths into host paths that provably stay inside the
//! workspace, after symbolic links are resolved.

use std::io;
use std::path::{Path, PathBuf};

use compute::{Error, WorkspacePath};

/// A job's workspace root, canonicalized once.
pub(crate) struct Workspace {
    root: PathBuf,
}

impl Workspace {
    pub(crate) fn open(root: &Path) -> Result<Self, Error> {
        let root = root.canonicalize().map_err(|e| {
            Error::InvalidSpec(format!("workspace {} is not usable: {e}", root.display()))
        })?;
        if !root.is_dir() {
            return Err(Error::InvalidSpec(format!(
                "workspace {} is not a folder",
                root.display()
            )));
        }
        Ok(Workspace { root })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The host folder for a mount, created when missing. Refused when it resolves
    /// outside the workspace (a symbolic link pointing out) or is not a folder.
    pub(crate) fn folder(&self, path: &WorkspacePath) -> Result<PathBuf, Error> {
        self.ensure_dir(path, path.as_str())
    }

    /// Creates (or truncates) an output file. Its folder is created and must resolve
    /// inside the workspace; the file itself must not be a symbolic link.
    pub(crate) fn create_file(&self, path: &WorkspacePath) -> Result<std::fs::File, Error> {
        let parent = match path.as_str().rsplit_once('/') {
            Some((parent, _)) => self.ensure_dir(path, parent)?,
            None => self.root.clone(),
        };
        let full = parent.join(Path::new(path.as_str()).file_name().unwrap_or_default());
        if std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::InvalidSpec(format!("output file {path} is a symbolic link")));
        }
        std::fs::File::create(&full).map_err(|e| self.io_error("create output file", path, e))
    }

    /// Walks `relative` one component at a time from the root, creating what is
    /// missing and following a symbolic link only when it stays inside the root, so
    /// that nothing is ever created outside it.
    fn ensure_dir(&self, path: &WorkspacePath, relative: &str) -> Result<PathBuf, Error> {
        let mut current = self.root.clone();
        for component in Path::new(relative).components() {
            current.push(component);
            match std::fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target = current
                        .canonicalize()
                        .map_err(|e| self.io_error("resolve path", path, e))?;
                    if !target.starts_with(&self.root) {
                        return Err(Error::InvalidSpec(format!(
                            "{path} resolves outside the workspace"
                        )));
                    }
                    current = target;
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(Error::InvalidSpec(format!("{path}: {relative} is not a folder")));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&current)
                    .map_err(|e| self.io_error("create folder", path, e))?,
                Err(e) => return Err(self.io_error("inspect path", path, e)),
            }
        }
        if !current.is_dir() {
            return Err(Error::InvalidSpec(format!("{path}: {relative} is not a folder")));
        }
        Ok(current)
    }

    fn io_error(&self, operation: &'static str, path: &WorkspacePath, e: io::Error) -> Error {
        Error::platform(operation, false, io::Error::new(e.kind(), format!("{path}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wp(p: &str) -> WorkspacePath {
        WorkspacePath::new(p).unwrap()
    }

    #[test]
    fn folders_and_files_inside_are_made() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let folder = ws.folder(&wp("run/input")).unwrap();
        assert!(folder.is_dir() && folder.starts_with(ws.root()));
        ws.create_file(&wp("run/output/stdout.txt")).unwrap();
        assert!(dir.path().join("run/output/stdout.txt").is_file());
    }

    #[test]
    fn symbolic_links_out_of_the_workspace_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), dir.path().join("file")).unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        for err in [
            ws.folder(&wp("escape")).unwrap_err(),
            ws.folder(&wp("escape/deeper")).unwrap_err(),
            ws.create_file(&wp("escape/stdout.txt")).unwrap_err(),
            ws.create_file(&wp("file")).unwrap_err(),
        ] {
            assert!(matches!(err, Error::InvalidSpec(_)), "{err}");
        }
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing written outside"
        );
    }
}
