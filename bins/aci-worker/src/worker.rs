//! `serve`: the consume loop, task runs, the outbox, and shutdown.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use celery_amqp::codalab::{
    COMPUTE_WORKER_RUN, SubmissionStatus, check_compute_worker_run, compute_worker_run_args,
    update_submission,
};
use celery_amqp::{
    BrokerOptions, ConsumerConfig, Delivery, Publisher, PublisherConfig, TaskConsumer, TaskMessage,
};
use codalab_run::{Status, StatusSink, StatusUpdate};
use compute::{BoxError, BoxFuture};
use serde_json::Value;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::backends::Backends;
use crate::config::{Config, OnShutdown};
use crate::logging::Secrets;
use crate::ops::Readiness;
use crate::state::{Outgoing, State, TaskRecord};

/// Everything a task run needs, shared.
struct Shared {
    config: Arc<Config>,
    state: Arc<State>,
    backends: Backends,
    secrets: Secrets,
    outbox: Arc<Notify>,
    requeue: Publisher,
    /// Set at shutdown when the task broker was never reached: tasks are then
    /// kept for the next start instead of handed back.
    unreachable: AtomicBool,
}

/// How one task ended, for metrics.
#[derive(Clone, Copy, Debug)]
enum Ended {
    Finished,
    Failed,
    Requeued,
    Kept,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Ended::Finished => "finished",
            Ended::Failed => "failed",
            Ended::Requeued => "requeued",
            Ended::Kept => "kept",
        }
    }
}

/// Status updates go to the durable outbox; the sender publishes them in order.
struct OutboxSink {
    state: Arc<State>,
    notify: Arc<Notify>,
    task_id: String,
    job_id: Value,
    secret: String,
}

impl StatusSink for OutboxSink {
    fn send<'a>(&'a self, update: StatusUpdate) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let outgoing = Outgoing {
                task_id: self.task_id.clone(),
                job_id: self.job_id.clone(),
                status: update.status.as_str().to_owned(),
                extra: update.extra(),
                secret: self.secret.clone(),
            };
            let state = self.state.clone();
            tokio::task::spawn_blocking(move || state.enqueue(&outgoing)).await??;
            self.notify.notify_one();
            Ok(())
        })
    }
}

fn broker_options(config: &Config, url: &celery_amqp::BrokerUrl, role: &str) -> BrokerOptions {
    let mut options =
        BrokerOptions::new(url.clone(), format!("aci-worker {} ({role})", config.worker_name));
    options.ca_file = config.broker_ca_file.clone();
    options
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn record_of(task: &TaskMessage) -> TaskRecord {
    TaskRecord {
        id: task.id.clone(),
        name: task.name.clone(),
        args: task.args.clone(),
        kwargs: task.kwargs.clone(),
        priority: task.priority,
        received_at: now(),
        starts: 0,
        retries: task.retries,
    }
}

fn message_of(record: &TaskRecord) -> TaskMessage {
    let mut task = TaskMessage::new(record.name.clone(), record.args.clone());
    task.id = record.id.clone();
    task.root_id = Some(record.id.clone());
    task.kwargs = record.kwargs.clone();
    task.priority = record.priority;
    task.retries = record.retries;
    task
}

/// Signals as a channel: every SIGTERM or SIGINT is one message.
fn signals() -> Result<mpsc::UnboundedReceiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// `serve`'s exit code when it stopped with tasks still recorded in `STATE_DIR`
/// (not handed back, not ended): they resume at the next start on it.
pub const EXIT_TASKS_KEPT: u8 = 6;

/// Follows a connection's [`Link`](celery_amqp::Link) as it changes: its
/// reconnect counter and connected gauge, labelled `connection`, and, for the
/// task consumer, readiness.
fn follow_link(
    mut link: watch::Receiver<celery_amqp::Link>,
    connection: &'static str,
    readiness: Option<Readiness>,
) {
    tokio::spawn(async move {
        loop {
            let now = *link.borrow_and_update();
            metrics::counter!("aci_worker_broker_reconnects_total", "connection" => connection)
                .absolute(now.reconnects);
            metrics::gauge!("aci_worker_broker_connected", "connection" => connection)
                .set(if now.connected { 1.0 } else { 0.0 });
            if let Some(readiness) = &readiness {
                readiness.set_connected(now.connected);
            }
            if link.changed().await.is_err() {
                // The consumer or publisher is gone (shutdown).
                if let Some(readiness) = &readiness {
                    readiness.set_connected(false);
                }
                return;
            }
        }
    });
}

/// Connects the task consumer, retrying every 5 s until it succeeds.
async fn connect_consumer(config: ConsumerConfig) -> TaskConsumer {
    loop {
        match TaskConsumer::connect(config.clone()).await {
            Ok(consumer) => return consumer,
            Err(e) => {
                tracing::warn!(error = %celery_amqp::error_chain(&e), "cannot reach the task broker yet; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Runs the worker until a signal; the process exit code.
pub async fn serve(config: Config, secrets: Secrets, readiness: Readiness) -> Result<u8> {
    let config = Arc::new(config);
    let mut signals = signals()?;
    let state = Arc::new(
        State::open(&config.state_dir)
            .with_context(|| format!("STATE_DIR {}", config.state_dir.display()))?,
    );
    let _ = state.prune_done(Duration::from_secs(7 * 24 * 3600));
    let backends = crate::backends::build(&config, false).await?;
    let broker = config.broker.clone().context("BROKER_URL")?;
    let main = config.main_broker.clone().context("MAIN_BROKER_URL")?;

    // Every series exists from the start, at zero.
    for connection in ["tasks", "updates", "requeue"] {
        metrics::counter!("aci_worker_broker_reconnects_total", "connection" => connection)
            .increment(0);
        metrics::gauge!("aci_worker_broker_connected", "connection" => connection).set(0.0);
    }
    let outbox = Arc::new(Notify::new());
    let updates = Publisher::new(PublisherConfig::to_queue(
        broker_options(&config, &main, "updates"),
        &config.updates_queue,
    ));
    follow_link(updates.link(), "updates", None);
    let mut requeue_config =
        PublisherConfig::to_queue(broker_options(&config, &broker, "requeue"), &config.queue);
    requeue_config.exchange = String::new();
    requeue_config.queue = None;
    let requeue = Publisher::new(requeue_config);
    follow_link(requeue.link(), "requeue", None);
    let ctx = Arc::new(Shared {
        config: config.clone(),
        state: state.clone(),
        backends,
        secrets,
        outbox: outbox.clone(),
        requeue,
        unreachable: AtomicBool::new(false),
    });
    let (outbox_stop_tx, outbox_stop) = watch::channel(false);
    let sender = tokio::spawn(outbox_loop(state.clone(), updates, outbox.clone(), outbox_stop));

    let permits = Arc::new(Semaphore::new(config.concurrency));
    let (kill_tx, kill_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    // Tasks a previous run of this worker took and did not finish: they start as
    // places free up, before any new delivery, while the broker is reached.
    let mut pending: VecDeque<TaskRecord> =
        state.pending().context("reading the state directory")?.into();
    if !pending.is_empty() {
        tracing::info!(count = pending.len(), "resuming tasks taken before the last stop");
    }
    if let Some(aci) = ctx.backends.aci.clone() {
        let (age, every) = (config.orphan_age, config.orphan_sweep_every);
        tokio::spawn(async move {
            loop {
                sweep_orphans(&aci, age).await;
                match every {
                    Some(every) => tokio::time::sleep(every).await,
                    None => return,
                }
            }
        });
    }

    let mut consumer_config =
        ConsumerConfig::new(broker_options(&config, &broker, "tasks"), config.queue.clone())
            .accept(COMPUTE_WORKER_RUN, check_compute_worker_run);
    // One delivery at a time, acknowledged as soon as it is recorded; with no room
    // left the consumer pauses (see the loop), so the worker never holds a task it
    // does not run: other workers get it, and no delivery meets the consumer timeout.
    consumer_config.prefetch = 1;
    let connect = connect_consumer(consumer_config);
    tokio::pin!(connect);
    let mut consumer: Option<TaskConsumer> = None;
    // Wakes the loop when the consumer's connection goes or comes back.
    let mut link: Option<watch::Receiver<celery_amqp::Link>> = None;

    // Signals are heard at every step: while resuming, connecting and consuming.
    loop {
        let paused_and_lost = consumer.is_some()
            && permits.available_permits() == 0
            && !consumer.as_ref().is_some_and(TaskConsumer::connected);
        tokio::select! {
            biased;
            _ = signals.recv() => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = joined {
                    tracing::error!(error = %e, "a task run panicked");
                }
            }
            // A free place: for the next resumed task, or else the next delivery.
            permit = permits.clone().acquire_owned(), if !pending.is_empty() || consumer.is_some() => {
                let permit = permit.expect("never closed");
                if let Some(record) = pending.pop_front() {
                    tasks.spawn(run_task(ctx.clone(), record, permit, kill_rx.clone()));
                    continue;
                }
                let consumer = consumer.as_mut().expect("connected");
                let delivery = tokio::select! {
                    _ = signals.recv() => break,
                    delivery = consumer.next() => delivery,
                };
                // This task takes the last free place: stop the flow before it is
                // acknowledged, which would let the broker send the next one here.
                // The next call to `next` resumes.
                if permits.available_permits() == 0 {
                    consumer.pause().await;
                }
                if let Some(record) = take(&state, delivery).await {
                    tasks.spawn(run_task(ctx.clone(), record, permit, kill_rx.clone()));
                }
            }
            connected = &mut connect, if consumer.is_none() => {
                let mut connected = connected;
                // No room yet (resumed tasks hold every place): hold no delivery.
                if permits.available_permits() == 0 || !pending.is_empty() {
                    connected.pause().await;
                }
                let receiver = connected.link();
                follow_link(receiver.clone(), "tasks", Some(readiness.clone()));
                link = Some(receiver);
                consumer = Some(connected);
                tracing::info!(queue = %config.queue, concurrency = config.concurrency, "consuming");
            }
            Ok(()) = async {
                match link.as_mut() {
                    Some(link) => link.changed().await,
                    None => std::future::pending().await,
                }
            }, if link.is_some() => {}
            // Busy and paused when the connection went: connect again without
            // consuming, so that the worker is ready again before it has room.
            // (`select!` builds the futures of disabled branches too: lazily here.)
            () = async {
                match consumer.as_mut() {
                    Some(consumer) => consumer.recover().await,
                    None => std::future::pending().await,
                }
            }, if paused_and_lost => {}
        }
    }

    // Shutdown: no new tasks; running ones get the grace period.
    readiness.set_stopping();
    match consumer.take() {
        Some(consumer) => consumer.close().await,
        None => {
            // Never connected: nothing can be handed back to the broker now.
            ctx.unreachable.store(true, Ordering::SeqCst);
            tracing::warn!(
                "stopping before the task broker was reached: tasks still running after the grace period stay recorded and resume at the next start"
            );
        }
    }
    // Resumed tasks that never got a place are stopped like running ones at the
    // end of the grace period, without waiting for it.
    for record in pending.drain(..) {
        tasks.spawn(stop_unstarted(ctx.clone(), record));
    }
    tracing::info!(
        running = tasks.len(),
        grace_s = config.grace.as_secs(),
        "stopping: waiting for running tasks"
    );
    let deadline = tokio::time::Instant::now() + config.grace;
    let mut killed = false;
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            _ = tokio::time::sleep_until(deadline), if !killed => {
                tracing::warn!(running = tasks.len(), policy = ?config.on_shutdown, "grace period over: stopping running tasks");
                let _ = kill_tx.send(true);
                killed = true;
            }
            _ = signals.recv() => {
                tracing::warn!("second signal: exiting now; unfinished tasks resume at the next start");
                return Ok(130);
            }
        }
    }
    // Give the outbox a moment to deliver the last statuses; what remains waits on disk.
    let drained = Instant::now() + Duration::from_secs(30);
    while state.outbox_len() > 0 && Instant::now() < drained {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = signals.recv() => return Ok(130),
        }
    }
    let _ = outbox_stop_tx.send(true);
    outbox.notify_one();
    let _ = sender.await;
    let kept = state.pending().map_or(0, |p| p.len());
    if kept > 0 {
        tracing::warn!(kept, "stopped; tasks stay recorded and resume at the next start");
        return Ok(EXIT_TASKS_KEPT);
    }
    tracing::info!("stopped");
    Ok(0)
}

/// A resumed task that never started before the shutdown: handed back or
/// reported failed per `ON_SHUTDOWN`, as a run stopped by the grace period is.
async fn stop_unstarted(ctx: Arc<Shared>, record: TaskRecord) {
    let Some(setup) = set_up(&ctx, &record) else { return };
    let traceback = "The compute worker shut down before the submission could start again.";
    stop(&ctx, &record, &setup.sink, traceback).instrument(setup.span.clone()).await;
}

/// What a run of a recorded task, or its stop, works with. Its secret is
/// redacted from every line until this is dropped.
struct Setup {
    args: serde_json::Map<String, Value>,
    predict: bool,
    step: &'static str,
    backend: &'static str,
    span: tracing::Span,
    sink: OutboxSink,
    _secret: Redacted,
}

/// A secret registered with [`Secrets`], removed again when dropped.
struct Redacted {
    secrets: Secrets,
    secret: String,
}

impl Drop for Redacted {
    fn drop(&mut self) {
        self.secrets.remove(&self.secret);
    }
}

/// Reads a recorded task's arguments, registers its secret and prepares its
/// span and status sink; `None`, and the task ended, when it has no arguments.
fn set_up(ctx: &Shared, record: &TaskRecord) -> Option<Setup> {
    let task = message_of(record);
    let Some((job_id, args)) = compute_worker_run_args(&task) else {
        tracing::error!(task_id = %record.id, "recorded task has no arguments; dropped");
        let _ = ctx.state.finish(&record.id);
        return None;
    };
    let predict = args.get("predict").and_then(Value::as_bool).unwrap_or(false);
    let step = if predict { "predict" } else { "score" };
    let (_, backend) = ctx.backends.for_step(predict);
    let submission = args.get("submission_id").map(|v| v.to_string()).unwrap_or_default();
    let span = tracing::info_span!("task", task_id = %record.id, job_id = %job_id, submission = %submission, step, backend);
    let secret = args.get("secret").and_then(Value::as_str).unwrap_or("").to_owned();
    ctx.secrets.add(&secret);
    let sink = OutboxSink {
        state: ctx.state.clone(),
        notify: ctx.outbox.clone(),
        task_id: record.id.clone(),
        job_id: job_id.clone(),
        secret: secret.clone(),
    };
    Some(Setup {
        args: args.clone(),
        predict,
        step,
        backend,
        span,
        sink,
        _secret: Redacted { secrets: ctx.secrets.clone(), secret },
    })
}

/// A task stopped by the shutdown (`traceback` says when): handed back or
/// reported failed per `ON_SHUTDOWN`.
async fn stop(ctx: &Shared, record: &TaskRecord, sink: &OutboxSink, traceback: &str) -> Ended {
    match ctx.config.on_shutdown {
        OnShutdown::Requeue => hand_back(ctx, record, &sink.secret).await,
        OnShutdown::Fail => fail(ctx, record, sink, traceback.into()).await,
    }
}

/// Removes this worker's ACI groups and shares older than `age`. The backend
/// leaves the jobs this process is running alone, however old, and logs each
/// delete that fails.
async fn sweep_orphans(aci: &backend_aci::AciBackend, age: Duration) {
    match aci.sweep_orphans(age).await {
        Ok(report) if report.removed() > 0 || report.failed() > 0 => tracing::info!(
            groups = report.groups.len(),
            shares = report.shares.len(),
            failed = report.failed(),
            "orphan sweep done; what failed is tried again by the next sweep"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %compute::error_chain(&e), "orphan sweep failed"),
    }
}

/// Records a delivery and acknowledges it; `None` when it is not to be run here.
async fn take(state: &Arc<State>, delivery: Delivery) -> Option<TaskRecord> {
    let record = record_of(&delivery.task);
    let recorded = {
        let state = state.clone();
        let record = record.clone();
        tokio::task::spawn_blocking(move || state.record(&record)).await
    };
    match recorded {
        Ok(Ok(true)) => match delivery.ack().await {
            Ok(()) => Some(record),
            Err(e) => {
                // Not acknowledged: the broker hands it out again.
                tracing::warn!(task_id = %record.id, error = %celery_amqp::error_chain(&e), "ack failed; the task will come again");
                let _ = state.forget(&record.id);
                None
            }
        },
        Ok(Ok(false)) => {
            metrics::counter!("aci_worker_duplicate_deliveries_total").increment(1);
            tracing::info!(task_id = %record.id, "task already taken; dropping the duplicate delivery");
            let _ = delivery.ack().await;
            None
        }
        Ok(Err(e)) => {
            tracing::error!(task_id = %record.id, error = %e, "cannot record the task; handing it back");
            let _ = delivery.nack(true).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "recording stopped");
            let _ = delivery.nack(true).await;
            None
        }
    }
}

/// Runs one recorded task to its end.
async fn run_task(
    ctx: Arc<Shared>,
    mut record: TaskRecord,
    permit: OwnedSemaphorePermit,
    mut kill: watch::Receiver<bool>,
) {
    let _permit = permit;
    let Some(setup) = set_up(&ctx, &record) else { return };
    let Setup { args, predict, step, backend, ref sink, .. } = setup;
    let (runner, _) = ctx.backends.for_step(predict);
    async {
        record.starts += 1;
        if record.starts > 1 {
            tracing::info!(starts = record.starts, "running a task again after a restart");
        }
        let _ = ctx.state.update(&record);
        metrics::gauge!("aci_worker_tasks_in_flight").increment(1.0);
        let started = Instant::now();
        tracing::info!("task started");
        let result = tokio::select! {
            result = runner.run(&record.id, &args, sink) => Some(result),
            _ = killed(&mut kill) => None,
        };
        let ended = match result {
            Some(Ok(report)) => {
                // Already done when the final status went to the outbox; this
                // covers a final status the sink could not write.
                if !ctx.state.is_done(&record.id) {
                    let _ = ctx.state.finish(&record.id);
                }
                tracing::info!(status = report.status.as_str(), timed_out = report.timed_out, "task ended");
                if report.status == Status::Finished { Ended::Finished } else { Ended::Failed }
            }
            Some(Err(retry)) => retry_later(&ctx, &mut record, sink, &*retry.0, &mut kill).await,
            // The run future is dropped: backends remove its containers.
            None => {
                let traceback = "The compute worker shut down before the submission finished.";
                stop(&ctx, &record, sink, traceback).await
            }
        };
        metrics::gauge!("aci_worker_tasks_in_flight").decrement(1.0);
        metrics::counter!("aci_worker_tasks_total", "step" => step, "backend" => backend, "outcome" => ended.as_str()).increment(1);
        metrics::histogram!("aci_worker_task_duration_seconds", "step" => step, "backend" => backend)
            .record(started.elapsed().as_secs_f64());
    }
    .instrument(setup.span.clone())
    .await;
}

/// Resolves once the shutdown's grace period is over.
async fn killed(kill: &mut watch::Receiver<bool>) {
    let _ = kill.wait_for(|k| *k).await;
}

/// Reports the task `failed` with `traceback`; the final status ends the task.
async fn fail(ctx: &Shared, record: &TaskRecord, sink: &OutboxSink, traceback: String) -> Ended {
    if ctx.state.is_done(&record.id) {
        // A dropped run's final status reached the outbox after all.
        return Ended::Failed;
    }
    let update = StatusUpdate {
        status: Status::Failed,
        metadata: Default::default(),
        traceback: Some(traceback),
    };
    // Written, the final status ended the task; otherwise end it here.
    if let Err(e) = sink.send(update).await {
        tracing::error!(error = %e, "the final status could not be written");
        let _ = ctx.state.finish(&record.id);
    }
    Ended::Failed
}

/// A run stopped by a transient platform failure: hand the task back after a
/// pause that grows with each attempt, or, after the last attempt allowed, report
/// it `failed` with the reason.
async fn retry_later(
    ctx: &Shared,
    record: &mut TaskRecord,
    sink: &OutboxSink,
    error: &(dyn std::error::Error + Send + Sync + 'static),
    kill: &mut watch::Receiver<bool>,
) -> Ended {
    let attempts = record.retries.saturating_add(1);
    let reason = ctx.secrets.redact(&compute::error_chain(error));
    let limit = ctx.config.task_attempts;
    if attempts >= limit {
        tracing::warn!(attempts, error = %reason, "the task failed on every attempt allowed; reporting it failed");
        let traceback = format!(
            "The compute worker could not run this submission: {attempts} attempt(s) were each stopped by a problem of the platform, not of the submission. The last one: {reason}"
        );
        return fail(ctx, record, sink, traceback).await;
    }
    let delay = retry_delay(ctx.config.retry_delay, record.retries);
    tracing::warn!(attempt = attempts, of = limit, delay_s = delay.as_secs(), error = %reason,
        "task could not run here now; handing it back after a pause");
    record.retries = attempts;
    let _ = ctx.state.update(record);
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        // Shutting down: no point in waiting; the task goes back at once.
        _ = killed(kill) => {}
    }
    hand_back(ctx, record, &sink.secret).await
}

/// The pause before handing a task back after its `retries`-th retry: `base`,
/// doubling with each retry up to an hour, with jitter.
fn retry_delay(base: Duration, retries: u32) -> Duration {
    let mut backoff = backoff::Backoff::new(base, Duration::from_secs(3600).max(base));
    let mut delay = backoff.next_delay();
    for _ in 0..retries.min(32) {
        delay = backoff.next_delay();
    }
    delay
}

/// Publishes the task again for some worker (`secret` elided from its
/// `argsrepr`); on failure the record stays, and the task resumes at the next
/// start.
async fn hand_back(ctx: &Shared, record: &TaskRecord, secret: &str) -> Ended {
    if ctx.state.is_done(&record.id) {
        // Its final status is in the outbox already: it must not run again.
        return Ended::Kept;
    }
    if ctx.unreachable.load(Ordering::SeqCst) {
        // Deliberately not tried: the broker was not reached since the start,
        // and a publish would only wait out its deadline. The record stays.
        tracing::warn!(
            "the task broker was never reached: the task stays recorded and resumes at the next start"
        );
        return Ended::Kept;
    }
    let task = message_of(record);
    match ctx.requeue.publish(&task, &[secret]).await {
        Ok(()) => {
            let _ = ctx.state.forget(&record.id);
            Ended::Requeued
        }
        Err(e) => {
            tracing::error!(error = %celery_amqp::error_chain(&e), "could not hand the task back; it resumes at the next start");
            Ended::Kept
        }
    }
}

/// Publishes the outbox in order, waiting out broker outages.
async fn outbox_loop(
    state: Arc<State>,
    publisher: Publisher,
    notify: Arc<Notify>,
    stop: watch::Receiver<bool>,
) {
    let mut backoff = backoff_for_outbox();
    loop {
        metrics::gauge!("aci_worker_outbox_pending").set(state.outbox_len() as f64);
        let next = match state.next_outgoing() {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let Some((path, update)) = next else {
            if *stop.borrow() {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), notify.notified()).await;
            continue;
        };
        let status = match update.status.as_str() {
            "running" => SubmissionStatus::Running,
            "finished" => SubmissionStatus::Finished,
            _ => SubmissionStatus::Failed,
        };
        let message =
            update_submission(&update.job_id, status, update.extra.clone(), &update.secret);
        match publisher.publish(&message, &[&update.secret]).await {
            Ok(()) => {
                backoff.reset();
                if let Err(e) = state.sent(&path) {
                    tracing::error!(error = %e, "cannot remove a sent update");
                }
                tracing::debug!(task_id = %update.task_id, status = %update.status, "status update sent");
            }
            Err(e) => {
                if *stop.borrow() {
                    return;
                }
                let delay = backoff.next_delay();
                tracing::warn!(task_id = %update.task_id, error = %celery_amqp::error_chain(&e), delay_s = delay.as_secs(),
                    "status update not sent yet; it waits on disk");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn backoff_for_outbox() -> backoff::Backoff {
    backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
}
