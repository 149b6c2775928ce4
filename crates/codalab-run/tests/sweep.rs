//! Steps folders whose scoring never came are removed after their age.

use std::time::{Duration, SystemTime};

use codalab_run::{Runner, RunnerConfig};
use compute::testing::ScriptedBackend;

#[tokio::test]
async fn old_steps_folders_are_swept_and_recent_ones_kept() {
    let work = tempfile::tempdir().unwrap();
    let mut config = RunnerConfig::new(work.path());
    config.steps_max_age = Duration::from_secs(3600);
    // The sweep never runs a job: the scripted backend only satisfies the type.
    let runner = Runner::new(ScriptedBackend::new(), config);
    let steps = work.path().join("steps");
    for name in ["submission-old", "submission-new"] {
        std::fs::create_dir_all(steps.join(name)).unwrap();
        std::fs::write(steps.join(name).join("state.txt"), "x").unwrap();
    }
    let old = std::fs::File::open(steps.join("submission-old")).unwrap();
    old.set_modified(SystemTime::now() - Duration::from_secs(7200)).unwrap();

    assert_eq!(runner.sweep_steps().await.unwrap(), 1);
    assert!(!steps.join("submission-old").exists());
    assert!(steps.join("submission-new/state.txt").exists());
}
