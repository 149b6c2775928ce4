//! The `aci-worker` binary end to end: real RabbitMQ (one virtual host per test),
//! the CodaLab site played by real Python Celery (`tests/python/site.py`), bundles
//! and outputs in Azurite behind SAS URLs, programs on the real Docker engine.
//!
//! These tests share the broker with the other broker tests through the nextest
//! group `rabbitmq` (one at a time): one of them stops the broker, another
//! changes its consumer timeout.

mod support;

use serde_json::json;
use support::*;

#[test]
fn docker_runs_a_code_and_a_result_submission_and_reports_each_step_once() {
    let vhost = Vhost::new("success");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [
            code_submission(&bundles, "coder", "echo computing; ls \"$1\""),
            result_submission(&bundles, "guesser", "41"),
        ],
    });
    let env = settings(&dirs, &vhost.url());
    let mut worker = Worker::start(&env, &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    let records = site.wait_done();

    assert_exactly_once(&records);
    for (job, (submission, step)) in dispatched(&records) {
        assert_eq!(job_statuses(&records, job), ["running", "finished"], "{submission} {step}");
    }
    let coder = final_of(&records, "coder");
    assert_eq!(coder["step"], "score");
    assert_eq!(coder["scores"], json!({"correct": 1.0}));
    for blob in ["stdout.txt", "stderr.txt", "output.zip", "detailed_results.html"] {
        assert!(coder["blobs"].get(blob).is_some(), "{blob} missing: {coder}");
    }
    let prediction = records
        .iter()
        .find(|r| r["submission"] == "coder" && r["step"] == "predict" && r["status"] == "finished")
        .unwrap();
    for blob in ["prediction_stdout.txt", "prediction_output.zip"] {
        assert!(prediction["blobs"].get(blob).is_some(), "{blob} missing: {prediction}");
    }
    assert_eq!(prediction["extra"]["metadata"]["hostname"], "e2e-host");
    assert_eq!(final_of(&records, "guesser")["scores"], json!({"correct": 0.0}));
    // Updates come through the exchange named like the queue.
    assert!(statuses(&records).iter().all(|r| r["exchange"] == "submission-updates"));

    // Health, readiness and the task counts.
    assert_eq!(worker.get("/healthz").0, 200);
    assert_eq!(worker.get("/readyz").0, 200);
    let (code, metrics) = worker.get("/metrics");
    assert_eq!(code, 200);
    let count = |step: &str| {
        metric(
            &metrics,
            "aci_worker_tasks_total",
            &[("step", step), ("backend", "docker"), ("outcome", "finished")],
        )
    };
    assert_eq!((count("predict"), count("score")), (1.0, 2.0), "{metrics}");
    assert_eq!(metric(&metrics, "aci_worker_tasks_in_flight", &[]), 0.0, "{metrics}");
    assert_eq!(metric(&metrics, "aci_worker_outbox_pending", &[]), 0.0, "{metrics}");

    let summary = site.stop();
    assert_eq!(
        summary,
        json!([
            {"submission": "coder", "status": "finished", "scores": {"correct": 1.0}, "traceback": null},
            {"submission": "guesser", "status": "finished", "scores": {"correct": 0.0}, "traceback": null},
        ])
    );
    assert_eq!(worker.stop(), 0);
    assert!(docker_containers_of(&worker.name).is_empty(), "containers left behind");
}

#[test]
fn a_program_that_exits_1_fails_with_its_traceback() {
    let vhost = Vhost::new("failure");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let model =
        "def predict(x):\n    raise ValueError(f'cannot predict {x!r}')\n\npredict('six')\n";
    let broken = bundle(
        &bundles,
        "broken",
        &[("metadata", "command: python3 $program/model.py\n"), ("model.py", model)],
    );
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [{"name": "broken", "bundle": broken, "docker_image": python_image()}],
    });
    let mut worker = Worker::start(&settings(&dirs, &vhost.url()), &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    let records = site.wait_done();

    assert_exactly_once(&records);
    let failed = final_of(&records, "broken");
    assert_eq!(
        (failed["step"].as_str(), failed["status"].as_str()),
        (Some("predict"), Some("failed"))
    );
    let traceback = failed["extra"]["traceback"].as_str().unwrap();
    for expected in [
        "exited with code 1",
        "Traceback (most recent call last)",
        "ValueError: cannot predict 'six'",
    ] {
        assert!(traceback.contains(expected), "{expected:?} not in {traceback}");
    }
    // The site scores nothing; the logs were still uploaded.
    assert_eq!(dispatched(&records).len(), 1);
    assert!(failed["blobs"]["prediction_stderr.txt"].as_u64().unwrap() > 0, "{failed}");
    let summary = site.stop();
    assert_eq!(summary[0]["status"], "failed");
    assert_eq!(worker.stop(), 0);
}

#[test]
fn a_run_over_its_time_limit_is_stopped_and_fails() {
    let vhost = Vhost::new("timeout");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let mut slow = code_submission(&bundles, "slow", "echo starting; sleep 600");
    slow["execution_time_limit"] = json!(3);
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [slow],
    });
    let mut worker = Worker::start(&settings(&dirs, &vhost.url()), &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    let records = site.wait_done();

    assert_exactly_once(&records);
    let failed = final_of(&records, "slow");
    assert_eq!(
        (failed["step"].as_str(), failed["status"].as_str()),
        (Some("predict"), Some("failed"))
    );
    let traceback = failed["extra"]["traceback"].as_str().unwrap();
    assert!(traceback.contains("Execution time limit exceeded (3 s)"), "{traceback}");
    // What it printed before the limit still reaches the site.
    assert!(failed["blobs"]["prediction_stdout.txt"].as_u64().unwrap() > 0, "{failed}");
    assert!(failed["blobs"].get("prediction_output.zip").is_some(), "{failed}");
    site.stop();
    assert_eq!(worker.stop(), 0);
    assert!(docker_containers_of(&worker.name).is_empty(), "the stopped container is removed");
}

#[test]
fn twenty_submissions_at_concurrency_8_each_end_exactly_once() {
    let vhost = Vhost::new("many");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let mut submissions = Vec::new();
    for i in 0..10 {
        submissions.push(gated_submission(&bundles, &format!("code{i}")));
        submissions.push(result_submission(&bundles, &format!("result{i}"), "42"));
    }
    let plan =
        json!({"competition": busybox_competition(&bundles, 120), "submissions": submissions});
    let mut env = settings(&dirs, &vhost.url());
    env.insert("WORKER_CONCURRENCY".into(), "8".into());
    let mut worker = Worker::start(&env, &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    // The ten predictions wait until released, and the result scorings end on
    // their own: the eight places fill with waiting predictions, all running at
    // once, and no ninth starts.
    wait_started(&dirs, 8);
    let records = site.wait_for("every submission to end", |records| {
        release(&dirs);
        records.iter().any(|r| r["done"] == true)
    });

    assert_exactly_once(&records);
    assert_eq!(dispatched(&records).len(), 30, "10 predictions and 20 scorings");
    // A task holds its place from before its `running` until after its final
    // status, and the outbox sends in order: so the jobs between those two in the
    // site's records never outnumber the tasks running at once.
    assert_eq!(peak_running(&records), 8, "never more than WORKER_CONCURRENCY at once");
    for (job, (submission, step)) in dispatched(&records) {
        assert_eq!(job_statuses(&records, job), ["running", "finished"], "{submission} {step}");
    }
    let summary = site.stop();
    let summary = summary.as_array().unwrap();
    assert_eq!(summary.len(), 20);
    for s in summary {
        assert_eq!((&s["status"], &s["scores"]), (&json!("finished"), &json!({"correct": 1.0})));
    }
    let metrics = worker.get("/metrics").1;
    assert_eq!(metric(&metrics, "aci_worker_tasks_total", &[("outcome", "finished")]), 30.0);
    assert_eq!(metric(&metrics, "aci_worker_duplicate_deliveries_total", &[]), 0.0);
    assert_eq!(worker.stop(), 0);
}

/// The most jobs that had reported `running` and not yet their final status at
/// any point of the site's records.
fn peak_running(records: &[serde_json::Value]) -> usize {
    let mut open = std::collections::BTreeSet::new();
    let mut peak = 0;
    for update in statuses(records) {
        let job = update["job_id"].as_u64().unwrap();
        match update["status"].as_str() {
            Some("running") => {
                open.insert(job);
            }
            _ => {
                open.remove(&job);
            }
        }
        peak = peak.max(open.len());
    }
    peak
}

#[test]
fn a_worker_on_a_custom_vhost_reports_to_the_main_vhost_as_a_restricted_user() {
    // A competition's own queue: its vhost, and a user who may do anything there
    // but on `/` holds CodaLab's custom-queue permissions only.
    let vhost = Vhost::new("custom");
    let user = User::new("codalab", "custom-queue-pass-3141");
    user.permit(&vhost.name, ".*", ".*", ".*");
    user.permit("/", ".*", ".*submission-updates.*", ".*submission-updates.*");
    // The test's own updates queue on `/`, within those permissions.
    let updates = format!("{}-submission-updates", unique("q"));

    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [code_submission(&bundles, "custom", "true")],
    });
    let mut env = settings(&dirs, &user.url(&vhost.name));
    env.insert("MAIN_BROKER_URL".into(), "amqp://127.0.0.1:5672/%2f".into());
    env.insert("MAIN_BROKER_LOGIN".into(), user.name.clone());
    env.insert("MAIN_BROKER_PASS".into(), user.password.clone());
    env.insert("UPDATES_QUEUE".into(), updates.clone());
    let mut worker = Worker::start(&env, &dirs.path().join("worker.log"));
    let mut options = SiteOptions::new(&amqp_url("guest", "guest", "/"), plan);
    options.task_broker = Some(vhost.url());
    options.updates_queue = Some(updates.clone());
    options.delete_updates_queue = true;
    let mut site = Site::start(options);
    let records = site.wait_done();

    assert_exactly_once(&records);
    assert_eq!(final_of(&records, "custom")["scores"], json!({"correct": 1.0}));
    for update in statuses(&records) {
        assert_eq!(update["exchange"], updates.as_str(), "{update}");
    }
    // Tasks came from the custom vhost, which the site still knows nothing of.
    assert_eq!(vhost.queue_counts("compute-worker"), Some((0, 0)));
    site.stop();
    assert_eq!(worker.stop(), 0);
    assert!(!worker.logs().contains("refused"), "{}", worker.logs());
}

#[test]
fn sigterm_lets_the_running_task_finish_and_takes_no_new_one() {
    let vhost = Vhost::new("sigterm");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [gated_submission(&bundles, "first"), code_submission(&bundles, "second", "true")],
    });
    let mut env = settings(&dirs, &vhost.url());
    env.insert("SHUTDOWN_GRACE_SECS".into(), "300".into());
    let log = dirs.path().join("worker.log");
    let mut worker = Worker::start(&env, &log);
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    wait_started(&dirs, 1);

    worker.terminate();
    // Draining: not ready any more, the running program still goes on.
    wait_until("/readyz to say not ready", || {
        matches!(http_get(&worker.addr, "/readyz"), Some((503, _)) | None).then_some(())
    });
    release(&dirs);
    assert_eq!(worker.wait(), 0);
    assert_eq!(outbox_len(&dirs), 0, "every status was sent before the exit");

    // The finished prediction reached the site, which dispatched its scoring; the
    // second submission was never started and waits in the queue with it.
    site.wait_for("the scoring of the first submission to be dispatched", |records| {
        dispatched(records).values().any(|(s, step)| s == "first" && step == "score")
    });
    wait_until("the site to read every update", || {
        (vhost.queue_counts("submission-updates") == Some((0, 0))).then_some(())
    });
    let records = site.records();
    let first = records.iter().find(|r| r["submission"] == "first" && r["status"] == "finished");
    assert_eq!(first.unwrap()["step"], "predict");
    assert!(records.iter().all(|r| r["submission"] != "second"), "the second one ran");
    assert_eq!(vhost.queue_counts("compute-worker"), Some((2, 0)));

    // The next worker takes both.
    env.insert("HTTP_ADDR".into(), free_addr());
    let mut next = Worker::start(&env, &log);
    let records = site.wait_done();
    assert_exactly_once(&records);
    for s in site.stop().as_array().unwrap() {
        assert_eq!(s["status"], "finished", "{s}");
    }
    assert_eq!(next.stop(), 0);
}

#[test]
fn a_second_signal_exits_at_once_with_130_and_the_task_resumes_later() {
    let vhost = Vhost::new("sigsig");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [gated_submission(&bundles, "interrupted")],
    });
    let mut env = settings(&dirs, &vhost.url());
    env.insert("SHUTDOWN_GRACE_SECS".into(), "600".into());
    let log = dirs.path().join("worker.log");
    let mut worker = Worker::start(&env, &log);
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    wait_started(&dirs, 1);

    worker.terminate();
    wait_until("/readyz to say not ready", || {
        matches!(http_get(&worker.addr, "/readyz"), Some((503, _)) | None).then_some(())
    });
    // The program still waits, inside a grace period of ten minutes.
    worker.terminate();
    assert_eq!(worker.wait(), 130);
    assert_eq!(started(&dirs), 1, "the program was never released");
    let records = std::fs::read_dir(dirs.state().join("tasks")).unwrap().count();
    assert_eq!(records, 1, "the task's record stays for the next start");

    // The next start runs it again from the beginning.
    env.insert("HTTP_ADDR".into(), free_addr());
    let mut next = Worker::start(&env, &log);
    let records = site.wait_for("the submission to end", |records| {
        release(&dirs);
        records.iter().any(|r| r["done"] == true)
    });
    assert_exactly_once(&records);
    let job = *dispatched(&records).keys().next().unwrap();
    assert_eq!(job_statuses(&records, job), ["running", "running", "finished"]);
    site.stop();
    assert_eq!(next.stop(), 0);
    assert!(docker_containers_of(&next.name).is_empty(), "the first run's container is gone");
}

#[test]
fn a_final_status_committed_just_before_a_kill_is_sent_once_and_the_task_not_rerun() {
    let vhost = Vhost::new("commit");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [gated_submission(&bundles, "committed")],
    });
    let mut env = settings(&dirs, &vhost.url());
    let log = dirs.path().join("worker.log");
    let mut worker = Worker::start(&env, &log);
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    site.wait_status("committed", "running");
    wait_started(&dirs, 1);
    worker.kill9();

    // What the worker has written when a kill comes right after the final status
    // is committed (its outbox entry under the name the sender does not read yet)
    // and before the task is marked done: written here from the task's record.
    let tasks: Vec<_> = std::fs::read_dir(dirs.state().join("tasks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tasks[0]).unwrap()).unwrap();
    let committed = json!({
        "task_id": record["id"],
        "job_id": record["args"][0],
        "status": "failed",
        "extra": {"metadata": {}, "traceback": "committed before the kill"},
        "secret": record["args"][1]["secret"],
    });
    let staged = dirs.state().join("outbox").join(format!("{:020}-committed.final", 1_000_000));
    std::fs::write(&staged, serde_json::to_vec(&committed).unwrap()).unwrap();

    env.insert("HTTP_ADDR".into(), free_addr());
    let mut next = Worker::start(&env, &log);
    let records = site.wait_done();
    assert_exactly_once(&records);
    let job = *dispatched(&records).keys().next().unwrap();
    assert_eq!(job_statuses(&records, job), ["running", "failed"], "not run again");
    let failed = final_of(&records, "committed");
    assert_eq!(failed["extra"]["traceback"], "committed before the kill");
    assert_eq!(outbox_len(&dirs), 0);
    assert!(!next.logs().contains("resuming tasks"), "{}", next.logs());
    site.stop();
    assert_eq!(next.stop(), 0);
    // The killed run's program is nobody's now: let it end and remove it.
    release(&dirs);
    remove_containers_of(&next.name);
}

#[test]
fn a_task_that_keeps_failing_transiently_ends_failed_after_its_attempts() {
    let vhost = Vhost::new("attempts");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let mut unlucky = result_submission(&bundles, "unlucky", "42");
    // Nothing listens on port 1: every upload of the output fails as a network
    // failure would, which may pass, so each run ends in a hand-back.
    unlucky["task_args"] = json!({"output_url": "http://127.0.0.1:1/output.zip?sig=x"});
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [unlucky],
    });
    let mut env = settings(&dirs, &vhost.url());
    env.insert("TASK_MAX_ATTEMPTS".into(), "3".into());
    env.insert("TASK_RETRY_DELAY_SECS".into(), "1".into());
    let mut worker = Worker::start(&env, &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    let records = site.wait_done();

    assert_exactly_once(&records);
    let job = *dispatched(&records).keys().next().unwrap();
    assert_eq!(job_statuses(&records, job), ["running", "running", "running", "failed"]);
    let failed = final_of(&records, "unlucky");
    let traceback = failed["extra"]["traceback"].as_str().unwrap();
    assert!(traceback.contains("3 attempt(s)"), "{traceback}");
    assert!(traceback.contains("uploading output.zip failed"), "{traceback}");
    assert!(!traceback.contains("sig=x"), "{traceback}");
    let metrics = worker.get("/metrics").1;
    let ended = |outcome: &str| metric(&metrics, "aci_worker_tasks_total", &[("outcome", outcome)]);
    assert_eq!((ended("requeued"), ended("failed")), (2.0, 1.0), "{metrics}");
    assert_eq!(
        vhost.queue_counts("compute-worker"),
        Some((0, 0)),
        "nothing handed back at the end"
    );
    site.stop();
    assert_eq!(worker.stop(), 0);
}

#[test]
fn a_worker_killed_mid_run_resumes_its_tasks_and_each_ends_once() {
    let vhost = Vhost::new("kill9");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let submissions: Vec<_> =
        (0..4).map(|i| gated_submission(&bundles, &format!("gated{i}"))).collect();
    let plan =
        json!({"competition": busybox_competition(&bundles, 120), "submissions": submissions});
    let mut env = settings(&dirs, &vhost.url());
    env.insert("WORKER_CONCURRENCY".into(), "2".into());
    let log = dirs.path().join("worker.log");
    let mut worker = Worker::start(&env, &log);
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    wait_started(&dirs, 2);

    worker.kill9();
    assert!(!docker_containers_of(&worker.name).is_empty(), "its containers outlive it");
    env.insert("HTTP_ADDR".into(), free_addr());
    let mut worker = Worker::start(&env, &log);
    // The two tasks it had taken resume, then the other two come; each program
    // is let go as soon as it waits.
    let records = site.wait_for("every submission to end", |records| {
        release(&dirs);
        records.iter().any(|r| r["done"] == true)
    });

    assert_exactly_once(&records);
    let restarted: Vec<_> = dispatched(&records)
        .into_iter()
        .filter(|(job, _)| job_statuses(&records, *job) == ["running", "running", "finished"])
        .collect();
    assert_eq!(restarted.len(), 2, "the two interrupted runs ran again: {restarted:?}");
    for s in site.stop().as_array().unwrap() {
        assert_eq!((&s["status"], &s["scores"]), (&json!("finished"), &json!({"correct": 1.0})));
    }
    assert!(worker.logs().contains("resuming tasks taken before the last stop"));
    assert_eq!(worker.stop(), 0);
    assert!(docker_containers_of(&worker.name).is_empty(), "the killed run's containers are gone");
}

#[test]
fn a_signal_before_the_broker_is_reached_still_drains_resumed_tasks() {
    let vhost = Vhost::new("unreached");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let submissions: Vec<_> =
        (0..2).map(|i| gated_submission(&bundles, &format!("held{i}"))).collect();
    let plan =
        json!({"competition": busybox_competition(&bundles, 120), "submissions": submissions});
    let mut env = settings(&dirs, &vhost.url());
    env.insert("WORKER_CONCURRENCY".into(), "2".into());
    let log = dirs.path().join("worker.log");
    let mut worker = Worker::start(&env, &log);
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    wait_started(&dirs, 2);
    worker.kill9();
    remove_containers_of(&worker.name);

    // The next start cannot reach its task broker (statuses still reach the
    // site), and has one place for the two tasks it resumes.
    let mut unreached = env.clone();
    unreached.insert("BROKER_URL".into(), "amqp://guest:guest@127.0.0.1:1/nowhere".into());
    unreached.insert("MAIN_BROKER_URL".into(), vhost.url());
    unreached.insert("WORKER_CONCURRENCY".into(), "1".into());
    unreached.insert("SHUTDOWN_GRACE_SECS".into(), "300".into());
    unreached.insert("ON_SHUTDOWN".into(), "requeue".into());
    unreached.insert("HTTP_ADDR".into(), free_addr());
    let mut worker = Worker::start(&unreached, &log);
    let resumed = |records: &[serde_json::Value]| {
        dispatched(records)
            .into_keys()
            .filter(|job| job_statuses(records, *job).len() >= 2)
            .collect::<Vec<_>>()
    };
    site.wait_for("one task to run again", |records| resumed(records).len() == 1);
    assert!(worker.logs().contains("cannot reach the task broker"), "{}", worker.logs());
    assert_eq!(worker.get("/readyz").0, 503, "never ready without its queue");

    // The signal is heard although the second task waits for a place; the
    // running one gets its grace period and ends; the waiting one cannot be
    // handed back, and stays recorded: the exit code says so.
    worker.terminate();
    let records = site.wait_for("the resumed run to finish", |records| {
        release(&dirs);
        statuses(records).iter().any(|r| r["status"] == "finished")
    });
    assert_eq!(worker.wait(), 6, "tasks stay recorded");
    let job = resumed(&records)[0];
    assert_eq!(job_statuses(&records, job), ["running", "running", "finished"]);
    let kept = std::fs::read_dir(dirs.state().join("tasks")).unwrap().count();
    assert_eq!(kept, 1, "the task that never got a place stays for the next start");
    assert!(worker.logs().contains("stays recorded and resumes at the next start"));

    // A start that reaches the broker runs it, and then the scorings.
    env.insert("HTTP_ADDR".into(), free_addr());
    let mut worker = Worker::start(&env, &log);
    let records = site.wait_for("every submission to end", |records| {
        release(&dirs);
        records.iter().any(|r| r["done"] == true)
    });
    assert_exactly_once(&records);
    for s in site.stop().as_array().unwrap() {
        assert_eq!(s["status"], "finished", "{s}");
    }
    assert_eq!(worker.stop(), 0);
    assert!(docker_containers_of(&worker.name).is_empty());
}

#[test]
fn statuses_wait_in_the_outbox_while_the_broker_is_down() {
    let vhost = Vhost::new("restart");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [gated_submission(&bundles, "patient")],
    });
    let mut worker = Worker::start(&settings(&dirs, &vhost.url()), &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    site.wait_status("patient", "running");
    wait_started(&dirs, 1);
    worker.wait_ready();
    let reconnects = |connection: &str| {
        let metrics = worker.get("/metrics").1;
        metric(&metrics, "aci_worker_broker_reconnects_total", &[("connection", connection)])
    };
    assert_eq!(reconnects("tasks"), 0.0);

    // A first outage while the worker is busy (its consumer paused) and nothing
    // else can arrive: readiness follows the connection both ways, and the
    // reconnect is counted when it happens.
    let mut broker = BrokerStopped::stop();
    wait_until("/readyz to say not ready while the broker is down", || {
        matches!(http_get(&worker.addr, "/readyz"), Some((503, _))).then_some(())
    });
    broker.start();
    worker.wait_ready();
    wait_until("the reconnect of the task consumer to be counted", || {
        (reconnects("tasks") >= 1.0).then_some(())
    });
    assert_eq!(started(&dirs), 1, "still the one task, still waiting");

    // A second one while the final status is due: it waits in the outbox.
    let mut broker = BrokerStopped::stop();
    wait_until("/readyz to say not ready again", || {
        matches!(http_get(&worker.addr, "/readyz"), Some((503, _))).then_some(())
    });
    release(&dirs);
    wait_until("the final status to wait in the outbox", || (outbox_len(&dirs) > 0).then_some(()));
    let metrics = worker.get("/metrics").1;
    assert!(metric(&metrics, "aci_worker_outbox_pending", &[]) >= 1.0, "{metrics}");
    broker.start();

    let records = site.wait_done();
    assert_exactly_once(&records);
    assert_eq!(final_of(&records, "patient")["scores"], json!({"correct": 1.0}));
    assert_eq!(outbox_len(&dirs), 0);
    worker.wait_ready();
    assert!(reconnects("tasks") >= 2.0);
    assert!(reconnects("updates") >= 1.0, "the outbox's publisher reconnected");
    site.stop();
    assert_eq!(worker.stop(), 0);
    // Nothing waited unacknowledged long enough for the broker to close a channel.
    assert!(!worker.logs().contains("PRECONDITION_FAILED"), "{}", worker.logs());
}

#[test]
fn a_busy_worker_leaves_waiting_tasks_to_other_workers() {
    let vhost = Vhost::new("share");
    let (dirs_a, dirs_b) = (Dirs::new(), Dirs::new());
    let bundles = dirs_a.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [gated_submission(&bundles, "one"), gated_submission(&bundles, "two")],
    });
    let mut a = Worker::start(&settings(&dirs_a, &vhost.url()), &dirs_a.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    wait_started(&dirs_a, 1);
    // Busy with one, the worker holds no other delivery: the second task waits
    // in the queue, where the next worker takes it.
    wait_until("the second task to wait in the queue, unacknowledged by nobody", || {
        (vhost.queue_counts("compute-worker") == Some((1, 0))).then_some(())
    });
    let mut b = Worker::start(&settings(&dirs_b, &vhost.url()), &dirs_b.path().join("worker.log"));
    wait_started(&dirs_b, 1);

    let records = site.wait_for("every submission to end", |records| {
        release(&dirs_a);
        release(&dirs_b);
        records.iter().any(|r| r["done"] == true)
    });
    assert_exactly_once(&records);
    site.stop();
    assert_eq!((a.stop(), b.stop()), (0, 0));
}

#[test]
fn a_short_consumer_timeout_does_not_run_a_task_twice() {
    // Deliveries unacknowledged for 10 s close their channel; the broker checks
    // every second instead of every minute, so that 30 s runs meet the timeout.
    let _broker =
        BrokerSettings::set(&[("consumer_timeout", "10000"), ("channel_tick_interval", "1000")]);
    let vhost = Vhost::new("ctimeout");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [
            code_submission(&bundles, "long1", "sleep 30"),
            code_submission(&bundles, "long2", "sleep 30"),
        ],
    });
    let mut worker = Worker::start(&settings(&dirs, &vhost.url()), &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    let records = site.wait_done();

    assert_exactly_once(&records);
    for (job, (submission, step)) in dispatched(&records) {
        assert_eq!(job_statuses(&records, job), ["running", "finished"], "{submission} {step}");
    }
    site.stop();
    assert_eq!(worker.stop(), 0);
    // Nothing waited unacknowledged long enough for the broker to close a channel.
    assert!(!worker.logs().contains("PRECONDITION_FAILED"), "{}", worker.logs());
}

#[test]
fn aci_runs_every_step_on_the_emulator_and_no_secret_reaches_the_logs() {
    // The broker user's password is distinctive, so that finding it is meaningful.
    let vhost = Vhost::new("aci");
    let user = User::new("acisite", "aci-broker-pass-2718");
    user.permit(&vhost.name, ".*", ".*", ".*");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [
            code_submission(&bundles, "cloudy", "echo computing on ACI; ls \"$1\""),
            result_submission(&bundles, "guess", "41"),
            code_submission(&bundles, "crash", "echo going down >&2; exit 3"),
        ],
    });
    let mut env = aci_settings(&dirs, &user.url(&vhost.name));
    // Everything the worker says, in JSON, down to debug.
    env.insert("LOG_FORMAT".into(), "json".into());
    env.insert("LOG_LEVEL".into(), "debug".into());
    let mut worker = Worker::start(&env, &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&user.url(&vhost.name), plan));
    let records = site.wait_done();

    assert_exactly_once(&records);
    let cloudy = final_of(&records, "cloudy");
    assert_eq!((&cloudy["step"], &cloudy["scores"]), (&json!("score"), &json!({"correct": 1.0})));
    assert!(cloudy["blobs"]["stdout.txt"].as_u64().unwrap() > 0, "{cloudy}");
    assert_eq!(final_of(&records, "guess")["scores"], json!({"correct": 0.0}));
    let crash = final_of(&records, "crash");
    assert_eq!(
        (crash["step"].as_str(), crash["status"].as_str()),
        (Some("predict"), Some("failed"))
    );
    let traceback = crash["extra"]["traceback"].as_str().unwrap();
    assert!(traceback.contains("exited with code 3"), "{traceback}");
    assert!(traceback.contains("going down"), "{traceback}");

    let metrics = worker.get("/metrics").1;
    let on_aci = |outcome: &str| {
        metric(&metrics, "aci_worker_tasks_total", &[("backend", "aci"), ("outcome", outcome)])
    };
    assert_eq!((on_aci("finished"), on_aci("failed")), (3.0, 1.0), "{metrics}");
    site.stop();
    assert_eq!(worker.stop(), 0);

    assert_nothing_left_on_aci(&env, &dirs);

    // The logs of the whole run hold no secret: not the submission secrets, not a
    // SAS signature of any URL the site signed, not the storage key, the client
    // secret or the broker password.
    let logs = worker.logs();
    assert!(logs.lines().count() > 20, "the worker logged its run:\n{logs}");
    for line in logs.lines() {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
    }
    let mut secrets = vec![
        user.password.clone(),
        service_env("ACI_TEST_AFS_KEY"),
        azure_client_secret(&service_env("ACI_TEST_AZURE_AUTH_LOCATION")),
    ];
    for record in records.iter().filter_map(|r| r.get("dispatched")) {
        let args = &record["task_args"];
        secrets.push(args["secret"].as_str().unwrap().to_owned());
        for url in args.as_object().unwrap().values().filter_map(|v| v.as_str()) {
            secrets.extend(sas_signatures(url));
        }
    }
    assert!(secrets.len() > 20, "the site signed URLs: {}", secrets.len());
    for secret in &secrets {
        assert!(secret.len() >= 8, "a secret too short to look for: {secret:?}");
        for form in [secret.clone(), percent_encode(secret)] {
            assert!(!logs.contains(&form), "a secret in the worker's logs: …{}…", &form[..4]);
        }
    }
}

#[test]
fn after_the_grace_period_a_task_is_handed_back_or_failed_as_configured() {
    let vhost = Vhost::new("grace");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [gated_submission(&bundles, "stuck")],
    });
    let mut env = settings(&dirs, &vhost.url());
    env.insert("SHUTDOWN_GRACE_SECS".into(), "1".into());
    env.insert("ON_SHUTDOWN".into(), "requeue".into());
    let log = dirs.path().join("worker.log");
    let mut worker = Worker::start(&env, &log);
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    wait_started(&dirs, 1);

    // requeue: the program is stopped, the task goes back to the queue unreported.
    worker.terminate();
    assert_eq!(worker.wait(), 0);
    assert!(docker_containers_of(&worker.name).is_empty(), "the program was stopped");
    assert_eq!(vhost.queue_counts("compute-worker"), Some((1, 0)), "handed back");
    assert_eq!(outbox_len(&dirs), 0);
    assert!(site.records().iter().all(|r| r["final"] != true), "no final status yet");

    // fail: the next worker takes it, and at its own shutdown reports it failed.
    env.insert("ON_SHUTDOWN".into(), "fail".into());
    env.insert("HTTP_ADDR".into(), free_addr());
    let mut next = Worker::start(&env, &log);
    wait_until("the handed-back task to start again", || {
        (started(&dirs) >= 1 && vhost.queue_counts("compute-worker") == Some((0, 0))).then_some(())
    });
    next.terminate();
    assert_eq!(next.wait(), 0);
    let records = site.wait_done();
    assert_exactly_once(&records);
    let failed = final_of(&records, "stuck");
    assert_eq!(failed["status"], "failed");
    let traceback = failed["extra"]["traceback"].as_str().unwrap();
    assert!(traceback.contains("shut down before the submission finished"), "{traceback}");
    assert!(docker_containers_of(&next.name).is_empty(), "the program was stopped");
    site.stop();
}

/// Nothing of the worker named in `env` is left on Azure: its `cleanup`, told that
/// anything of any age is an orphan, finds no container group and no share.
fn assert_nothing_left_on_aci(env: &std::collections::BTreeMap<String, String>, dirs: &Dirs) {
    let mut cleanup_env = env.clone();
    cleanup_env.insert("ORPHAN_AGE_SECS".into(), "0".into());
    let cleanup_log = dirs.path().join("cleanup.log");
    let mut cleanup = Worker::command(&["cleanup"], &cleanup_env, &cleanup_log);
    assert_eq!(cleanup.wait(), 0, "{}", cleanup.logs());
    assert!(
        cleanup.logs().contains("removed 0 container group(s) and 0 share(s)"),
        "{}",
        cleanup.logs()
    );
}

#[test]
fn on_aci_a_run_over_its_time_limit_is_stopped_and_fails() {
    let vhost = Vhost::new("aci-timeout");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let mut slow = code_submission(&bundles, "slow", "echo starting; sleep 600");
    slow["execution_time_limit"] = json!(3);
    let plan = json!({
        "competition": busybox_competition(&bundles, 120),
        "submissions": [slow],
    });
    let env = aci_settings(&dirs, &vhost.url());
    let mut worker = Worker::start(&env, &dirs.path().join("worker.log"));
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    let records = site.wait_done();

    assert_exactly_once(&records);
    let failed = final_of(&records, "slow");
    assert_eq!(
        (failed["step"].as_str(), failed["status"].as_str()),
        (Some("predict"), Some("failed"))
    );
    let traceback = failed["extra"]["traceback"].as_str().unwrap();
    assert!(traceback.contains("Execution time limit exceeded (3 s)"), "{traceback}");
    // What it printed before the group was stopped still reaches the site.
    assert!(failed["blobs"]["prediction_stdout.txt"].as_u64().unwrap() > 0, "{failed}");
    site.stop();
    assert_eq!(worker.stop(), 0);
    assert_nothing_left_on_aci(&env, &dirs);
}

#[test]
fn on_aci_a_worker_killed_mid_run_resumes_its_tasks_and_each_ends_once() {
    let vhost = Vhost::new("aci-kill9");
    let dirs = Dirs::new();
    let bundles = dirs.path().join("bundles");
    let submissions: Vec<_> = (0..3)
        .map(|i| code_submission(&bundles, &format!("long{i}"), "echo working; sleep 6"))
        .collect();
    let plan =
        json!({"competition": busybox_competition(&bundles, 120), "submissions": submissions});
    let mut env = aci_settings(&dirs, &vhost.url());
    env.insert("WORKER_CONCURRENCY".into(), "2".into());
    let log = dirs.path().join("worker.log");
    let mut worker = Worker::start(&env, &log);
    let mut site = Site::start(SiteOptions::new(&vhost.url(), plan));
    // Two runs have begun (their groups are being made or are running).
    site.wait_for("two predictions to be running", |records| {
        statuses(records).iter().filter(|r| r["status"] == "running").count() >= 2
    });

    worker.kill9();
    env.insert("HTTP_ADDR".into(), free_addr());
    let mut worker = Worker::start(&env, &log);
    let records = site.wait_done();

    assert_exactly_once(&records);
    let restarted = dispatched(&records)
        .into_iter()
        .filter(|(job, _)| job_statuses(&records, *job) == ["running", "running", "finished"])
        .count();
    assert_eq!(restarted, 2, "the two interrupted runs ran again");
    for s in site.stop().as_array().unwrap() {
        assert_eq!((&s["status"], &s["scores"]), (&json!("finished"), &json!({"correct": 1.0})));
    }
    assert!(worker.logs().contains("resuming tasks taken before the last stop"));
    assert_eq!(worker.stop(), 0);
    // The killed runs' groups and shares were removed when their tasks resumed.
    assert_nothing_left_on_aci(&env, &dirs);
}
