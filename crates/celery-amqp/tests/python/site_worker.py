"""Play the CodaLab site's side of status updates: a Celery worker that runs
`apps.web.tasks.update_submission(job_id, args, secret)` and records each
call.

Every call is appended to --out as one JSON line (flushed at once):

    {"job_id": ..., "args": ..., "secret": ..., "task_id": "<request id>",
     "delivery_info": {"exchange": ..., "routing_key": ..., ...}}

Once the worker has declared its queue and started consuming, the line
{"ready": true} is written first (from Celery's worker_ready signal), so a
test starts publishing only after it has seen that line. Celery workers take
messages in task protocol 1 and 2 alike; like the site, this one accepts only
JSON (others are logged and dropped by Celery, and not recorded).

The queue (default submission-updates) is durable, without arguments. With
--exchange NAME it is also bound to the direct exchange NAME with the queue's
name as routing key (CodaLab names that exchange like the queue); without it
the queue is reachable only through the default exchange.

The worker runs in this process (solo pool) until SIGTERM/SIGINT, until
--timeout seconds have passed, or until its parent process is gone, so a
test that dies leaves nothing behind. Nothing is printed on stdout. Exit
status 0 after such a stop; non-zero (with a message on stderr) when the
worker could not connect, lost the broker for good or failed to start.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import warnings

from celery import Celery, signals
from celery.exceptions import SecurityWarning
from kombu import Exchange, Queue

TASK_NAME = "apps.web.tasks.update_submission"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", required=True, help="AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672//")
    p.add_argument("--out", required=True, help="file to append the JSON lines to")
    p.add_argument("--queue", default="submission-updates", help="queue to consume (default submission-updates)")
    p.add_argument("--exchange", metavar="NAME",
                   help="also bind the queue to this direct exchange, routing key = queue name")
    p.add_argument("--accept", choices=("json",), default="json",
                   help="content types accepted (only json, as the site)")
    p.add_argument("--timeout", type=float, default=600,
                   help="stop after this many seconds (default 600)")
    return p.parse_args()


def write_line(out, record):
    out.write(json.dumps(record, default=str) + "\n")
    out.flush()


def watchdog(deadline, parent):
    """Stop the worker at the deadline or when the parent process is gone;
    exit hard if the warm shutdown takes too long."""
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    print("site_worker.py: timeout or parent gone; stopping", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    os._exit(3)


def main():
    args = parse_args()
    try:
        out = open(args.out, "a", encoding="utf-8")
    except OSError as e:
        print(f"site_worker.py: error: cannot open --out: {e}", file=sys.stderr)
        sys.exit(1)

    app = Celery("codalab-site", broker=args.broker)
    q = args.queue
    if args.exchange:
        queue = Queue(q, Exchange(args.exchange, type="direct"), routing_key=q)
    else:
        queue = Queue(q, routing_key=q)
    app.conf.update(
        task_queues=[queue],
        # An empty default exchange: a queue without --exchange gets no
        # binding beyond the default exchange's (Celery would otherwise bind
        # it to an exchange named 'celery').
        task_default_exchange="",
        accept_content=[args.accept],
        task_serializer=args.accept,
        worker_hijack_root_logger=False,
        broker_connection_timeout=5,
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=3,
        worker_prefetch_multiplier=1,
        # No remote control: no pidbox queue and exchange on the broker.
        worker_enable_remote_control=False,
    )

    @app.task(name=TASK_NAME, bind=True)
    def update_submission(self, job_id, args, secret):
        info = self.request.delivery_info or {}
        write_line(out, {
            "job_id": job_id,
            "args": args,
            "secret": secret,
            "task_id": self.request.id,
            "delivery_info": {k: info.get(k) for k in ("exchange", "routing_key", "priority", "redelivered")},
        })

    workers = []
    signals.worker_init.connect(lambda sender, **_: workers.append(sender), weak=False)

    @signals.worker_ready.connect(weak=False)
    def on_ready(sender, **_kwargs):
        # The event loop sleeps in poll() up to 10 s when no timer is due,
        # and notices a SIGTERM only when it wakes; a timer every 0.2 s
        # makes the warm shutdown quick.
        sender.timer.call_repeatedly(0.2, lambda: None)
        write_line(out, {"ready": True})

    # Tests run as root; the worker only accepts JSON, so the warning about
    # running as root is noise here.
    warnings.filterwarnings("ignore", category=SecurityWarning)
    deadline = time.monotonic() + args.timeout
    threading.Thread(target=watchdog, args=(deadline, os.getppid()), daemon=True).start()

    # Celery writes its banner and shutdown notes to the real stdout; send
    # them to stderr, and give --quiet to drop the banner.
    os.dup2(2, 1)
    # Neither app.worker_main nor app.start returns the worker's exit code;
    # it is read from the worker itself.
    app.start([
        "--quiet", "worker", "--pool=solo", "--concurrency=1", "-Q", q,
        "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--loglevel=WARNING", f"--hostname=site-worker-{os.getpid()}@%h",
    ])
    code = workers[0].exitcode if workers else 1
    if code:
        print(f"site_worker.py: error: the worker stopped with exit code {code} (see above)",
              file=sys.__stderr__, flush=True)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
