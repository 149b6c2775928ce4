"""Play the CodaLab site (v1) for end-to-end runs of aci-worker.

What the site does for each submission, this script does too:

  * it keeps the competition's bundles (scoring program, reference data, input
    data, ingestion program) and each submission's zip in a blob store (Azurite,
    through the official azure-storage-blob SDK), one container per submission;
  * it writes the run bundle (run.txt, and for scoring the input.txt that names
    `ref` and `res`) and signs a SAS URL for every blob the worker reads or
    writes: stdout, stderr, output, private output, ingestion stdout and stderr,
    detailed results;
  * it dispatches `compute_worker_run` as codalab-competitions does:
    send_task('compute_worker_run', args=[job_id, task_args],
    queue=<queue>, priority=2, soft_time_limit=<limit + 3600>), on a queue
    declared with x-max-priority 2;
  * it runs `apps.web.tasks.update_submission(job_id, args, secret)` in a Celery
    worker consuming `submission-updates` (bound to the direct exchange named
    like it) and, when a prediction finishes, dispatches the scoring step,
    whose input names the prediction's output.zip as `res`; when a scoring step
    finishes it reads scores.txt from the output zip.

A submission whose folder holds a `metadata` file is a code submission
(prediction, then scoring); one without is a result submission, scored at
once, as in a phase without a prediction step. A plan may say otherwise.

Every update_submission call is appended to --records as one JSON line,
flushed at once:

    {"job_id": 3, "submission": "alice", "step": "predict"|"score",
     "status": "running"|"finished"|"failed", "extra": {...},
     "secret_ok": true, "task_id": "<update task id>", "redelivered": false,
     "final": <whether this ends the submission>,
     "scores": {"accuracy": 0.9}        (finished scoring only)
     "blobs": {"output.zip": 1234, ...}  (final statuses: what the step uploaded)}

Other lines: {"ready": true} once the Celery worker consumes; {"dispatched":
{"job_id", "submission", "step", "task_id", "task_args"}} for each compute_worker_run
sent (task_args hold the secret and the SAS URLs: the file is the site's own);
{"done": true} when every submission has ended (scoring ended, or prediction
failed). Unknown job ids are recorded with "unknown_job": true.

Plan (--plan FILE, JSON):

    {"competition": {"scoring_program": DIR, "reference_data": DIR,
                     "input_data": DIR?, "ingestion_program": DIR?,
                     "hidden_ref": false, "docker_image": IMAGE,
                     "ingestion_program_docker_image": IMAGE?,
                     "execution_time_limit": 300},
     "submissions": [{"name": "alice", "bundle": DIR, "predict": bool?,
                      "execution_time_limit": N?, "task_args": {...}?}]}

or --competition DIR: a folder of bundle folders named scoring_program,
reference_data, input_data, ingestion_program, and one folder per submission
whose name ends in `submission` (examples/competition/bundles), with --image.

The process runs until SIGTERM/SIGINT, until --timeout, until its parent is
gone, or (with --exit-when-done) until every submission has ended. At the end it
prints each submission's final status and scores on stdout (--summary-json: one
JSON object instead of a table). Exit status 0 after such a stop, 1 when
something failed (message on stderr), 2 when --exit-when-done and a
submission did not finish.
"""

import argparse
import io
import json
import os
import signal
import sys
import threading
import time
import uuid
import warnings
import zipfile
from datetime import datetime, timedelta, timezone

from celery import Celery, signals
from celery.exceptions import SecurityWarning
from kombu import Exchange, Queue

UPDATE_TASK = "apps.web.tasks.update_submission"
AZURITE_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's built-in key, public in Microsoft's docs; it protects nothing.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# The site signs bundle URLs for a long time; a day is plenty for a test.
SAS_SECONDS = 24 * 3600

# Blob names per step: (task_args key, blob name). The site keeps prediction and
# scoring outputs apart (prediction_output_file vs output_file).
TARGETS = {
    "predict": [
        ("stdout_url", "prediction_stdout.txt"),
        ("stderr_url", "prediction_stderr.txt"),
        ("output_url", "prediction_output.zip"),
        ("private_output_url", "prediction_private_output.zip"),
        ("ingestion_program_output_url", "prediction_ingestion_stdout.txt"),
        ("ingestion_program_stderr_url", "prediction_ingestion_stderr.txt"),
        ("detailed_results_url", "prediction_detailed_results.html"),
    ],
    "score": [
        ("stdout_url", "stdout.txt"),
        ("stderr_url", "stderr.txt"),
        ("output_url", "output.zip"),
        ("private_output_url", "private_output.zip"),
        ("ingestion_program_output_url", "ingestion_stdout.txt"),
        ("ingestion_program_stderr_url", "ingestion_stderr.txt"),
        ("detailed_results_url", "detailed_results.html"),
    ],
}


def fail(message):
    print(f"site.py: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", required=True,
                   help="the site's main broker (vhost /): update_submission is consumed here")
    p.add_argument("--task-broker",
                   help="where compute_worker_run goes (a competition's own vhost); default --broker")
    p.add_argument("--queue", default="compute-worker", help="compute queue (default compute-worker)")
    p.add_argument("--updates-queue", default="submission-updates",
                   help="queue and exchange of update_submission (default submission-updates)")
    p.add_argument("--records", required=True, help="file to append the JSON lines to")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--plan", help="JSON plan: competition and submissions")
    src.add_argument("--competition", help="folder of bundle folders (examples/competition/bundles)")
    p.add_argument("--image", help="image of every program (with --competition; default $ACI_TEST_PYTHON)")
    p.add_argument("--execution-time-limit", type=int, default=300,
                   help="seconds (with --competition; default 300)")
    p.add_argument("--name", default=None,
                   help="prefix of blob containers (default: a fresh one per run)")
    p.add_argument("--first-job-id", type=int, default=1, help="job ids start here (default 1)")
    p.add_argument("--exit-when-done", action="store_true",
                   help="stop once every submission has ended")
    p.add_argument("--summary-json", action="store_true", help="print the summary as one JSON line")
    p.add_argument("--delete-updates-queue", action="store_true",
                   help="at the end, delete the updates queue and its exchange (a test's own, on /)")
    p.add_argument("--timeout", type=float, default=1800, help="stop after this many seconds")
    return p.parse_args()


# ---------------------------------------------------------------- blob store


class Store:
    """Azurite through the official SDK: containers, uploads, SAS URLs."""

    def __init__(self):
        from azure.storage.blob import BlobServiceClient

        self.endpoint = os.environ.get("AZURITE_BLOB_ENDPOINT", AZURITE_ENDPOINT).rstrip("/")
        self.account = os.environ.get("AZURITE_ACCOUNT", AZURITE_ACCOUNT)
        self.key = os.environ.get("AZURITE_KEY", AZURITE_KEY)
        self.service = BlobServiceClient(
            self.endpoint, credential={"account_name": self.account, "account_key": self.key})

    def container(self, name):
        from azure.core.exceptions import ResourceExistsError

        try:
            self.service.get_container_client(name).create_container()
        except ResourceExistsError:
            pass

    def put(self, container, name, data):
        self.service.get_blob_client(container, name).upload_blob(data, overwrite=True)

    def url(self, container, name, write=False):
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        permission = BlobSasPermissions(create=True, write=True) if write else BlobSasPermissions(read=True)
        sas = generate_blob_sas(
            account_name=self.account, container_name=container, blob_name=name,
            account_key=self.key, permission=permission,
            expiry=datetime.now(timezone.utc) + timedelta(seconds=SAS_SECONDS))
        return self.service.get_blob_client(container, name).url + "?" + sas

    def get(self, container, name):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.service.get_blob_client(container, name).download_blob().readall()
        except ResourceNotFoundError:
            return None

    def sizes(self, container, prefix=""):
        client = self.service.get_container_client(container)
        return {b.name: b.size for b in client.list_blobs(name_starts_with=prefix or None)}


def zip_folder(folder):
    """A bundle zip: the folder's files at the root of the archive, modes kept."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                info = zipfile.ZipInfo.from_file(path, os.path.relpath(path, folder))
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as f:
                    z.writestr(info, f.read())
    return buf.getvalue()


def parse_scores(text):
    """scores.txt: `name: value` lines, as the site reads them."""
    scores = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            try:
                scores[key.strip()] = float(value.strip())
            except ValueError:
                scores[key.strip()] = value.strip()
    return scores


# ---------------------------------------------------------------- the site


class Site:
    def __init__(self, args, plan, records):
        self.args = args
        self.plan = plan
        self.records = records
        self.lock = threading.Lock()
        self.store = Store()
        self.run = args.name or f"site-{uuid.uuid4().hex[:10]}"
        self.jobs = {}  # job_id -> {"submission": name, "step": ...}
        self.submissions = {}  # name -> state
        self.next_job = args.first_job_id
        self.done_written = False

        self.tasks = Celery("codalab-site-dispatch", broker=args.task_broker or args.broker)
        q = args.queue
        self.tasks.conf.update(
            task_protocol=2,
            task_serializer="json",
            accept_content=["json"],
            broker_connection_timeout=5,
            broker_transport_options={"confirm_publish": True},
            # The site declares the compute queue with priorities.
            task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q,
                               queue_arguments={"x-max-priority": 2})],
        )

    def write(self, record):
        with self.lock:
            self.records.write(json.dumps(record, default=str) + "\n")
            self.records.flush()

    # -- bundles

    def stage_competition(self):
        comp = self.plan["competition"]
        self.comp_container = f"{self.run}-competition"[:63]
        self.store.container(self.comp_container)
        self.bundle_urls = {}
        for key in ("scoring_program", "reference_data", "input_data", "ingestion_program"):
            folder = comp.get(key)
            if folder:
                self.store.put(self.comp_container, f"{key}.zip", zip_folder(folder))
                self.bundle_urls[key] = self.store.url(self.comp_container, f"{key}.zip")

    def container_of(self, index):
        return f"{self.run}-s{index}"[:63]

    def stage_submission(self, index, sub):
        container = self.container_of(index)
        self.store.container(container)
        self.store.put(container, "submission.zip", zip_folder(sub["bundle"]))
        predict = sub.get("predict")
        if predict is None:
            predict = os.path.exists(os.path.join(sub["bundle"], "metadata"))
        state = {
            "name": sub["name"], "index": index, "container": container, "predict": predict,
            "secret": str(uuid.uuid4()), "spec": sub, "status": "submitted", "scores": None,
            "score_dispatched": False, "final": None,
        }
        self.submissions[sub["name"]] = state
        return state

    def targets(self, state, step):
        return {key: self.store.url(state["container"], name, write=True)
                for key, name in TARGETS[step]}

    def run_bundle(self, state, step):
        """run.txt (and for scoring input.txt) as the site writes them; its URL."""
        c = state["container"]
        comp = self.plan["competition"]
        out = self.targets(state, step)
        lines = []
        if step == "predict":
            lines.append(f"program: {self.store.url(c, 'submission.zip')}")
            if "input_data" in self.bundle_urls:
                lines.append(f"input: {self.bundle_urls['input_data']}")
            if "ingestion_program" in self.bundle_urls:
                lines.append(f"ingestion_program: {self.bundle_urls['ingestion_program']}")
                if comp.get("hidden_ref") and "reference_data" in self.bundle_urls:
                    lines.append(f"hidden_ref: {self.bundle_urls['reference_data']}")
        else:
            res = "prediction_output.zip" if state["predict"] else "submission.zip"
            inputs = [f"ref: {self.bundle_urls['reference_data']}", f"res: {self.store.url(c, res)}"]
            self.store.put(c, "input.txt", ("\n".join(inputs) + "\n").encode())
            lines.append(f"program: {self.bundle_urls['scoring_program']}")
            lines.append(f"input: {self.store.url(c, 'input.txt')}")
        # Upload targets and plain values: never fetched by the worker.
        lines.append(f"stdout: {out['stdout_url']}")
        lines.append(f"stderr: {out['stderr_url']}")
        lines.append(f"submitted-by: {state['name']}")
        lines.append(f"submitted-at: {datetime.now(timezone.utc).isoformat()}")
        lines.append(f"competition-submission: {state['index'] + 1}")
        name = "prediction_run.txt" if step == "predict" else "run.txt"
        self.store.put(c, name, ("\n".join(lines) + "\n").encode())
        return self.store.url(c, name), out

    # -- dispatch

    def dispatch(self, state, step):
        comp = self.plan["competition"]
        spec = state["spec"]
        bundle_url, targets = self.run_bundle(state, step)
        limit = spec.get("execution_time_limit", comp.get("execution_time_limit", 300))
        image = spec.get("docker_image", comp.get("docker_image"))
        task_args = {
            "submission_id": state["index"] + 1,
            "docker_image": image,
            "ingestion_program_docker_image": comp.get("ingestion_program_docker_image", image),
            "bundle_url": bundle_url,
            **targets,
            "secret": state["secret"],
            "execution_time_limit": limit,
            "predict": step == "predict",
        }
        task_args.update(spec.get("task_args", {}))
        with self.lock:
            job_id = self.next_job
            self.next_job += 1
            self.jobs[job_id] = {"submission": state["name"], "step": step}
        result = self.tasks.send_task(
            "compute_worker_run", args=[job_id, task_args], queue=self.args.queue, priority=2,
            soft_time_limit=int(limit) + 3600,
            retry=True,
            retry_policy={"max_retries": 60, "interval_start": 0.5, "interval_step": 0.5,
                          "interval_max": 2},
        )
        self.write({"dispatched": {"job_id": job_id, "submission": state["name"], "step": step,
                                   "task_id": result.id, "task_args": task_args}})
        return job_id

    def start(self):
        self.stage_competition()
        for index, sub in enumerate(self.plan["submissions"]):
            state = self.stage_submission(index, sub)
            self.dispatch(state, "predict" if state["predict"] else "score")

    # -- updates

    def update(self, request, job_id, args, secret):
        info = request.delivery_info or {}
        job = self.jobs.get(job_id)
        status = (args or {}).get("status")
        record = {
            "job_id": job_id, "status": status, "extra": (args or {}).get("extra"),
            "task_id": request.id, "redelivered": info.get("redelivered"),
            "exchange": info.get("exchange"), "routing_key": info.get("routing_key"),
        }
        if job is None:
            record["unknown_job"] = True
            self.write(record)
            return
        state = self.submissions[job["submission"]]
        record.update(submission=state["name"], step=job["step"], secret_ok=secret == state["secret"])
        final = False
        if record["secret_ok"] and status in ("finished", "failed"):
            final = status == "failed" or job["step"] == "score"
            names = {n for _, n in TARGETS[job["step"]]}
            sizes = self.store.sizes(state["container"])
            record["blobs"] = {name: size for name, size in sizes.items() if name in names}
            if job["step"] == "score" and status == "finished":
                record["scores"] = self.read_scores(state)
        record["final"] = final
        self.write(record)
        if not record["secret_ok"]:
            return
        if status == "running" and state["final"] is None:
            state["status"] = "running"
        if job["step"] == "predict" and status == "finished" and not state["score_dispatched"]:
            # The site scores a prediction as soon as it is finished.
            state["score_dispatched"] = True
            self.dispatch(state, "score")
        if final and state["final"] is None:
            state["final"] = status
            state["status"] = status
            state["scores"] = record.get("scores")
            state["traceback"] = (record["extra"] or {}).get("traceback")
        if not self.done_written and all(s["final"] for s in self.submissions.values()):
            self.done_written = True
            self.write({"done": True})
            if self.args.exit_when_done:
                os.kill(os.getpid(), signal.SIGTERM)

    def read_scores(self, state):
        data = self.store.get(state["container"], "output.zip")
        if data is None:
            return None
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return parse_scores(z.read("scores.txt").decode("utf-8", "replace"))
        except (KeyError, zipfile.BadZipFile):
            return None

    def summary(self):
        return [{"submission": s["name"], "status": s["status"], "scores": s["scores"],
                 "traceback": s.get("traceback")}
                for s in sorted(self.submissions.values(), key=lambda s: s["index"])]


# ---------------------------------------------------------------- plans


def competition_plan(folder, image, limit):
    comp = {"docker_image": image, "execution_time_limit": limit}
    for key in ("scoring_program", "reference_data", "input_data", "ingestion_program"):
        path = os.path.join(folder, key)
        if os.path.isdir(path):
            comp[key] = path
    if "scoring_program" not in comp or "reference_data" not in comp:
        fail(f"{folder} needs scoring_program/ and reference_data/")
    subs = [{"name": name, "bundle": os.path.join(folder, name)}
            for name in sorted(os.listdir(folder))
            if name.endswith("submission") and os.path.isdir(os.path.join(folder, name))]
    if not subs:
        fail(f"{folder} has no folder named *submission")
    return {"competition": comp, "submissions": subs}


def print_summary(summary, as_json, out):
    if as_json:
        out.write(json.dumps({"summary": summary}) + "\n")
    else:
        for s in summary:
            scores = ", ".join(f"{k} {v}" for k, v in (s["scores"] or {}).items()) or "no scores"
            out.write(f"{s['submission']}: {s['status']} ({scores})\n")
            if s["status"] == "failed" and s.get("traceback"):
                for line in s["traceback"].strip().splitlines()[:8]:
                    out.write(f"    | {line}\n")
    out.flush()


def delete_updates_queue(broker, name):
    """Removes a test's updates queue and exchange from a shared vhost."""
    from kombu import Connection

    with Connection(broker, connect_timeout=5) as conn:
        channel = conn.channel()
        channel.queue_delete(name)
        channel.exchange_delete(name)


def watchdog(deadline, parent):
    """Stop at the deadline or when the parent process is gone; exit hard if the
    warm shutdown hangs."""
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    print("site.py: timeout or parent gone; stopping", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(15)
    os._exit(3)


def main():
    args = parse_args()
    if args.plan:
        with open(args.plan, encoding="utf-8") as f:
            plan = json.load(f)
    else:
        image = args.image or os.environ.get("ACI_TEST_PYTHON")
        if not image:
            fail("--competition needs --image (or $ACI_TEST_PYTHON)")
        plan = competition_plan(args.competition, image, args.execution_time_limit)
    try:
        records = open(args.records, "a", encoding="utf-8")
    except OSError as e:
        fail(f"cannot open --records: {e}")
    site = Site(args, plan, records)

    app = Celery("codalab-site", broker=args.broker)
    q = args.updates_queue
    app.conf.update(
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q)],
        task_default_exchange="",
        accept_content=["json"],
        task_serializer="json",
        worker_hijack_root_logger=False,
        broker_connection_timeout=5,
        broker_connection_retry_on_startup=True,
        # Wait out broker restarts, as the site does.
        broker_connection_max_retries=None,
        worker_prefetch_multiplier=1,
        worker_enable_remote_control=False,
    )

    @app.task(name=UPDATE_TASK, bind=True)
    def update_submission(self, job_id, args, secret):
        site.update(self.request, job_id, args, secret)

    workers = []
    signals.worker_init.connect(lambda sender, **_: workers.append(sender), weak=False)
    failure = []

    @signals.worker_ready.connect(weak=False)
    def on_ready(sender, **_kwargs):
        # Wake the event loop often so that SIGTERM stops it quickly.
        sender.timer.call_repeatedly(0.2, lambda: None)
        site.write({"ready": True, "run": site.run})
        try:
            site.start()
        except Exception as e:  # noqa: BLE001 - reported and ends the run
            failure.append(f"{type(e).__name__}: {e}")
            os.kill(os.getpid(), signal.SIGTERM)

    warnings.filterwarnings("ignore", category=SecurityWarning)
    threading.Thread(target=watchdog, args=(time.monotonic() + args.timeout, os.getppid()),
                     daemon=True).start()

    # Celery writes its banner to stdout: keep stdout for the summary.
    summary_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    app.start([
        "--quiet", "worker", "--pool=solo", "--concurrency=1", "-Q", q,
        "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--loglevel=WARNING", f"--hostname=site-{os.getpid()}@%h",
    ])
    code = workers[0].exitcode if workers else 1
    print_summary(site.summary(), args.summary_json, summary_out)
    if args.delete_updates_queue:
        try:
            delete_updates_queue(args.broker, q)
        except Exception as e:  # noqa: BLE001 - reported, the run itself is over
            failure.append(f"deleting {q}: {type(e).__name__}: {e}")
    if failure:
        fail(failure[0])
    if code:
        fail(f"the Celery worker stopped with exit code {code}")
    if args.exit_when_done and not site.done_written:
        sys.exit(2)


if __name__ == "__main__":
    main()
