"""Send tasks to RabbitMQ exactly as the CodaLab site sends compute jobs.

The site builds a Celery app on its broker and calls

    app.send_task('compute_worker_run', args=[job_id, task_args],
                  queue='compute-worker', priority=..., soft_time_limit=...)

This script does the same, so Rust integration tests can check that the
worker understands real Celery messages, in task protocol 1 and 2.

Queue declaration: the site declares `compute-worker` with
`x-max-priority: 2`, and RabbitMQ refuses (PRECONDITION_FAILED, closing the
channel) any later declaration of that queue with other arguments. Celery
declares the queue it publishes to before every first publish, by default
with no arguments, so:

  * with --queue-max-priority N the queue is declared as the site does
    (direct exchange named like the queue, routing key = queue name,
    `x-max-priority: N`);
  * without it, a queue that already exists is not declared again at all
    (whatever its arguments), and a missing one is declared the Celery way,
    durable and without arguments.

Publisher confirms are on: when the script exits 0 the broker holds every
task. Prints one JSON line on stdout: {"task_ids": [...]}.
"""

import argparse
import json
import signal
import sys

from celery import Celery
from kombu import Exchange, Queue

DEFAULT_QUEUE = "compute-worker"
BLOB = "http://127.0.0.1:10000/devstoreaccount1"
SAS = "sv=2019-12-12&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJl"

# What the site puts in task_args for a scoring run (competition 7,
# submission 42). The URLs point at Azurite's account, which holds none of
# these blobs; tests that download pass their own --task-args-json.
DEFAULT_TASK_ARGS = {
    "submission_id": 42,
    "docker_image": "codalab/codalab-legacy:py37",
    "ingestion_program_docker_image": "codalab/codalab-legacy:py37",
    "bundle_url": f"{BLOB}/bundles/competition/7/submission/42/run.txt?{SAS}",
    "stdout_url": f"{BLOB}/bundles/submission/42/stdout.txt?{SAS}",
    "stderr_url": f"{BLOB}/bundles/submission/42/stderr.txt?{SAS}",
    "output_url": f"{BLOB}/bundles/submission/42/output.zip?{SAS}",
    "private_output_url": f"{BLOB}/bundles/submission/42/private_output.zip?{SAS}",
    "ingestion_program_output_url": f"{BLOB}/bundles/submission/42/ingestion_output.txt?{SAS}",
    "ingestion_program_stderr_url": f"{BLOB}/bundles/submission/42/ingestion_stderr.txt?{SAS}",
    "detailed_results_url": f"{BLOB}/bundles/submission/42/detailed_results.html?{SAS}",
    "secret": "7d1a8a47-2f7e-4c7b-9c1e-2b1f8f3f6a10",
    "execution_time_limit": 3600,
    "predict": False,
}


def fail(message):
    print(f"send_task.py: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def on_alarm(_signum, _frame):
    fail("timed out (--timeout)")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", required=True, help="AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672//")
    p.add_argument("--protocol", type=int, choices=(1, 2), default=2, help="Celery task protocol (default 2)")
    p.add_argument("--queue", default=DEFAULT_QUEUE, help=f"queue to send to (default {DEFAULT_QUEUE})")
    p.add_argument("--queue-max-priority", type=int, metavar="N",
                   help="declare the queue with x-max-priority N (as the site does with 2)")
    p.add_argument("--priority", type=int, help="message priority (default: none)")
    p.add_argument("--count", type=int, default=1, help="number of tasks to send (default 1)")
    p.add_argument("--job-id", type=int, default=1,
                   help="job id of the first task; task k gets job id JOB_ID+k-1 (default 1)")
    p.add_argument("--task-args-json", metavar="JSON",
                   help="task_args as JSON, normally a dict; any JSON value is sent as it is "
                        "(default: a realistic CodaLab dict)")
    p.add_argument("--soft-time-limit", type=int, default=3900, help="soft_time_limit in seconds (default 3900)")
    p.add_argument("--task-name", default="compute_worker_run", help="task name (default compute_worker_run)")
    p.add_argument("--serializer", choices=("json", "pickle", "yaml"), default="json",
                   help="task serializer (default json; yaml needs PyYAML)")
    p.add_argument("--timeout", type=float, default=30, help="give up after this many seconds (default 30)")
    args = p.parse_args()
    if args.count < 1:
        p.error("--count must be at least 1")
    return args


def queue_exists(app, name):
    """Whether the queue exists, asked with a passive declare on its own
    channel (a missing queue closes the channel it was asked on)."""
    with app.connection_for_write() as conn:
        channel = conn.channel()
        try:
            channel.queue_declare(queue=name, passive=True)
        except conn.channel_errors:
            return False
        channel.close()
        return True


def main():
    args = parse_args()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)

    if args.task_args_json is None:
        task_args = DEFAULT_TASK_ARGS
    else:
        try:
            task_args = json.loads(args.task_args_json)
        except ValueError as e:
            fail(f"--task-args-json is not JSON: {e}")
    if args.serializer == "yaml":
        try:
            import yaml  # noqa: F401  kombu registers yaml only when it imports
        except ImportError:
            fail("--serializer yaml needs PyYAML, which is not installed")

    app = Celery("codalab-site", broker=args.broker)
    app.conf.update(
        task_protocol=args.protocol,
        task_serializer=args.serializer,
        accept_content=[args.serializer],
        broker_connection_timeout=5,
        broker_connection_retry=False,
        broker_connection_max_retries=0,
        task_publish_retry=False,
        broker_transport_options={"confirm_publish": True},
    )
    q = args.queue
    options = {}
    if args.queue_max_priority is not None:
        app.conf.task_queues = [
            Queue(q, Exchange(q, type="direct"), routing_key=q,
                  queue_arguments={"x-max-priority": args.queue_max_priority}),
        ]
    elif queue_exists(app, q):
        # Send without declaring: declaring with other arguments than the
        # queue has fails with PRECONDITION_FAILED.
        options["declare"] = []
    if args.priority is not None:
        options["priority"] = args.priority

    task_ids = []
    for job_id in range(args.job_id, args.job_id + args.count):
        result = app.send_task(args.task_name, args=[job_id, task_args], queue=q,
                               soft_time_limit=args.soft_time_limit, **options)
        task_ids.append(result.id)
    app.close()
    print(json.dumps({"task_ids": task_ids}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # broker unreachable, channel closed, ...
        fail(f"{type(e).__name__}: {e}")
