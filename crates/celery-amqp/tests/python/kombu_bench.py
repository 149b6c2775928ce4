"""The Python side of the AMQP benchmark: publish and consume with kombu
(the client under Celery, which the CodaLab site and the Python compute
worker use), to compare with our Rust client on the same broker.

  publish  N persistent messages of --size bytes, publisher confirms on
           (kombu's confirm_publish transport option: each publish waits
           for the broker's ack), to --queue through the default exchange
  consume  N messages with prefetch --prefetch, decoding each JSON body and
           acking it; timed from the first message received to the last ack
  fill     N persistent messages without confirms, as fast as possible, to
           prepare a queue for a consume run

The queue is declared durable without arguments when missing; an existing
queue is used as it is. Each run prints one JSON line on stdout:

  {"side": "kombu", "op": OP, "count": N, "seconds": WALL,
   "cpu_seconds": CPU, "msgs_per_sec": N/WALL}

(cpu_seconds is this process's CPU time, time.process_time(), over the
same span as seconds.)
"""

import argparse
import json
import signal
import sys
import time

from kombu import Connection, Consumer, Producer, Queue


def fail(message):
    print(f"kombu_bench.py: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def on_alarm(_signum, _frame):
    fail("timed out (--timeout)")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="op", required=True)

    def common(name, help_text):
        s = sub.add_parser(name, help=help_text)
        s.add_argument("--broker", required=True, help="AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672//")
        s.add_argument("--queue", required=True, help="queue name")
        s.add_argument("--count", type=int, required=True, help="number of messages")
        s.add_argument("--timeout", type=float, default=300, help="give up after this many seconds (default 300)")
        return s

    for name, help_text in (("publish", "publish with publisher confirms"),
                            ("fill", "publish without confirms")):
        s = common(name, help_text)
        s.add_argument("--size", type=int, default=1024, help="body size in bytes (default 1024)")
    s = common("consume", "consume, decode and ack")
    s.add_argument("--prefetch", type=int, default=100, help="prefetch count (default 100)")
    args = p.parse_args()
    if args.count < 1:
        p.error("--count must be at least 1")
    return args


def ensure_queue(conn, name):
    """Use the queue if it exists, else declare it durable without arguments.
    The passive check runs on its own channel: a missing queue closes it."""
    channel = conn.channel()
    try:
        channel.queue_declare(queue=name, passive=True)
        channel.close()
    except conn.channel_errors:
        conn.default_channel.queue_declare(queue=name, durable=True, auto_delete=False)


def json_body(i, size):
    """A JSON object of exactly `size` bytes (at least its minimal form)."""
    head = '{"seq":%d,"pad":"' % i
    return head + "x" * max(0, size - len(head) - 2) + '"}'


def publish(conn, args, confirm):
    ensure_queue(conn, args.queue)
    producer = Producer(conn.default_channel, routing_key=args.queue, auto_declare=False)
    bodies = [json_body(i, args.size).encode() for i in range(args.count)]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for body in bodies:
        producer.publish(body, content_type="application/json", content_encoding="utf-8",
                         delivery_mode=2, retry=False)
    if not confirm:
        # A synchronous round trip on the same channel: the broker has
        # routed every publish before it answers.
        conn.default_channel.queue_declare(queue=args.queue, passive=True)
    return time.perf_counter() - wall0, time.process_time() - cpu0


def consume(conn, args):
    ensure_queue(conn, args.queue)
    state = {"n": 0, "wall0": None, "cpu0": None}

    def on_message(body, message):
        if state["wall0"] is None:
            state["wall0"], state["cpu0"] = time.perf_counter(), time.process_time()
        # JSON objects from `fill`, or Celery protocol 2 task bodies
        # ([args, kwargs, embed]) from the Rust side of the benchmark.
        if not isinstance(body, (dict, list)):
            fail(f"message {state['n']} is not a JSON object or list")
        message.ack()
        state["n"] += 1

    channel = conn.default_channel
    consumer = Consumer(channel, queues=[Queue(args.queue, no_declare=True)],
                        callbacks=[on_message], accept=["json"], prefetch_count=args.prefetch)
    with consumer:
        while state["n"] < args.count:
            try:
                conn.drain_events(timeout=10)
            except TimeoutError:
                fail(f"no message for 10 s after {state['n']} of {args.count}")
    return time.perf_counter() - state["wall0"], time.process_time() - state["cpu0"]


def main():
    args = parse_args()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    options = {"confirm_publish": True} if args.op == "publish" else {}
    with Connection(args.broker, connect_timeout=5, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1)
        if args.op == "consume":
            wall, cpu = consume(conn, args)
        else:
            wall, cpu = publish(conn, args, confirm=args.op == "publish")
    print(json.dumps({
        "side": "kombu", "op": args.op, "count": args.count,
        "seconds": round(wall, 6), "cpu_seconds": round(cpu, 6),
        "msgs_per_sec": round(args.count / wall, 1) if wall > 0 else None,
    }), flush=True)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # broker unreachable, channel closed, ...
        fail(f"{type(e).__name__}: {e}")
