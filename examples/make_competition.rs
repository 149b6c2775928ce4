//! Builds the example competition of `examples/competition/` into a folder, ready for
//! `run-task-docker` and `audit-backend`:
//!
//! ```text
//! make-competition [--image IMAGE] DEST [SOURCE]
//! ```
//!
//! - every folder of `SOURCE/bundles/` becomes `DEST/bundles/<folder>.zip`;
//! - the run bundles of `SOURCE/runs/` and the task files of `SOURCE/tasks/` are
//!   copied to `DEST/runs/` and `DEST/tasks/` with `{{dir}}` replaced by the
//!   absolute path of `DEST` and `{{image}}` by `IMAGE`;
//! - the tasks upload their results under `DEST/outputs/<task>/`.
//!
//! `SOURCE` defaults to this package's `competition/` folder, `IMAGE` to
//! `$ACI_TEST_PYTHON` (the Debian image with Python that `scripts/dev-services up`
//! serves). The task files are printed, one per line, in the order they can run.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use codalab_run::archive::create_zip;
use compute::ImageRef;

const DEFAULT_IMAGE: &str = "127.0.0.1:5000/aci-worker-test/python:bookworm";

fn main() -> ExitCode {
    let mut image = std::env::var("ACI_TEST_PYTHON").unwrap_or_else(|_| DEFAULT_IMAGE.into());
    let mut paths = Vec::new();
    let mut usable = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--image" => match args.next() {
                Some(value) => image = value,
                None => usable = false,
            },
            flag if flag.starts_with('-') => usable = false,
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    let source = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/competition"));
    let (dest, source) = match paths.as_slice() {
        [dest] if usable => (dest, &source),
        [dest, source] if usable => (dest, source),
        _ => {
            eprintln!("usage: make-competition [--image IMAGE] DEST [SOURCE]");
            return ExitCode::from(2);
        }
    };
    match build(source, dest, &image) {
        Ok(tasks) => {
            for task in tasks {
                println!("{}", task.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make-competition: {}", compute::error_chain(&*e));
            ExitCode::from(2)
        }
    }
}

/// Builds the competition; returns the task files.
fn build(source: &Path, dest: &Path, image: &str) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let image = ImageRef::parse(image)?.to_string();
    std::fs::create_dir_all(dest)?;
    let dest = dest.canonicalize()?;
    let dir = dest.to_str().filter(|d| plain(d)).ok_or_else(|| {
        format!(
            "{}: the path goes into YAML and JSON unquoted; pick one without quotes, \
             backslashes, '#', ':' or control characters",
            dest.display()
        )
    })?;
    std::fs::create_dir_all(dest.join("outputs"))?;

    std::fs::create_dir_all(dest.join("bundles"))?;
    for bundle in entries(&source.join("bundles"))?.into_iter().filter(|p| p.is_dir()) {
        let name = bundle.file_name().ok_or("a bundle folder without a name")?;
        let zip = dest.join("bundles").join(format!("{}.zip", name.to_string_lossy()));
        create_zip(&bundle, &zip, &[]).map_err(|e| format!("{}: {e}", bundle.display()))?;
    }

    let mut tasks = Vec::new();
    for folder in ["runs", "tasks"] {
        std::fs::create_dir_all(dest.join(folder))?;
        for template in entries(&source.join(folder))?.into_iter().filter(|p| p.is_file()) {
            let text = std::fs::read_to_string(&template)
                .map_err(|e| format!("{}: {e}", template.display()))?;
            let text = text.replace("{{dir}}", dir).replace("{{image}}", &image);
            let out = dest.join(folder).join(template.file_name().ok_or("a file without a name")?);
            std::fs::write(&out, text)?;
            if folder == "tasks" {
                tasks.push(out);
            }
        }
    }
    // Prediction steps first: a scoring step may read a prediction's output.
    tasks.sort_by_key(|t| {
        let name = t.file_name().unwrap_or_default().to_string_lossy().into_owned();
        (!name.starts_with("predict"), name)
    });
    Ok(tasks)
}

/// The entries of a folder, sorted by name.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths = read.map(|e| e.map(|e| e.path())).collect::<Result<Vec<_>, _>>()?;
    paths.sort();
    Ok(paths)
}

/// Safe to write unquoted into a YAML value and inside a JSON string.
fn plain(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\' | '#' | ':'))
}
