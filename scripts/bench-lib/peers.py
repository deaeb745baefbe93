"""Python peers of lockhog, measured with lockhog bench's workloads.

    python peers.py PEER URL SECONDS

PEER is one of pals, python-redis-lock, py-dspinlock, redis-py, and lockhog-py (lockhog's own
Python package, on any URL lockhog takes). Prints one JSON object:
uncontended acquire+release cycles/s (with p50/p99 of a cycle) and handoff p50/p99 (a holder
releases while a waiter on its own connection blocks in acquire; both times from
time.perf_counter(), one monotonic clock in this one process), like `lockhog bench --json`.
"""

import json
import sys
import threading
import time

PARK = 0.005  # seconds the holder lets the waiter settle into its wait before releasing
NAME = "lockhog-bench-peer"


def quantile(values, p):
    v = sorted(values)
    if not v:
        return None
    rank = max(1, min(len(v), int(-(-p * len(v) // 1))))
    return v[rank - 1]


def make(peer, url):
    """Returns new_client(): each call a client with its own connection, whose value is
    (acquire_blocking, try_acquire, release) over the lock NAME."""
    if peer == "pals":
        import pals

        def new_client():
            # SQLAlchemy names the dialect `postgresql` and picks psycopg 3 unless told psycopg2.
            locker = pals.Locker("lockhog-bench", url.replace("postgres://", "postgresql+psycopg2://", 1))
            lock = locker.lock(NAME)
            return (
                lambda: lock.acquire(blocking=True, acquire_timeout=60000),
                lambda: lock.acquire(blocking=False),
                lock.release,
            )

    elif peer == "python-redis-lock":
        import redis
        import redis_lock

        def new_client():
            conn = redis.Redis.from_url(url)
            holder = {}

            def acquire(blocking):
                lock = redis_lock.Lock(conn, NAME, expire=30)
                ok = lock.acquire(blocking=blocking)
                holder["lock"] = lock
                return ok

            return (lambda: acquire(True), lambda: acquire(False), lambda: holder["lock"].release())

    elif peer == "redis-py":
        import redis

        def new_client():
            conn = redis.Redis.from_url(url)
            holder = {}

            def acquire(blocking):
                lock = conn.lock(NAME, timeout=30)
                ok = lock.acquire(blocking=blocking)
                holder["lock"] = lock
                return ok

            return (lambda: acquire(True), lambda: acquire(False), lambda: holder["lock"].release())

    elif peer == "py-dspinlock":
        import redis
        from dspinlock import HashDSpinlock

        def new_client():
            # decode_responses: its values are parsed as text.
            conn = redis.Redis.from_url(url, decode_responses=True)
            holder = {}

            # No try-once: its acquire spins (sleeping 0.5 s between tries) up to 10 times,
            # and goes straight through when the lock is free, as in the uncontended loop.
            def acquire():
                lock = HashDSpinlock(NAME, sess=conn)
                lock._acquire()
                holder["lock"] = lock
                return True

            return (acquire, acquire, lambda: holder["lock"]._release())

    elif peer == "lockhog-py":
        import lockhog

        def new_client():
            # A locker of its own: its own connections, as each peer client has.
            lock = lockhog.Locker(url).lock(NAME)
            return (
                lambda: lock.acquire(timeout=60),
                lambda: lock.acquire(blocking=False),
                lock.release,
            )

    else:
        raise SystemExit(f"unknown peer {peer}")
    return new_client


def main():
    peer, url, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    new_client = make(peer, url)
    wait, try_acquire, release = new_client()

    # Uncontended: 60 % of the time (after a short warm-up).
    for _ in range(20):
        assert try_acquire(), "uncontended acquire failed"
        release()
    cycles = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds * 0.6:
        t = time.perf_counter()
        assert try_acquire(), "uncontended acquire failed"
        release()
        cycles.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started

    # Handoff: the rest, at least 5 rounds.
    w_wait, _, w_release = new_client()
    go = threading.Semaphore(0)
    held_at = []
    done = threading.Semaphore(0)
    stop = []

    def waiter():
        while True:
            go.acquire()
            if stop:
                return
            w_wait()
            held_at.append(time.perf_counter())
            w_release()
            done.release()

    th = threading.Thread(target=waiter, daemon=True)
    th.start()
    handoffs = []
    started = time.perf_counter()
    while len(handoffs) < 5 or time.perf_counter() - started < seconds * 0.4:
        assert wait(), "holder acquire failed"
        go.release()
        time.sleep(PARK)
        t0 = time.perf_counter()
        release()
        if not done.acquire(timeout=60):
            raise SystemExit("the waiter never got the lock")
        handoffs.append(held_at.pop() - t0)
        if len(handoffs) >= 100000:
            break
    stop.append(True)
    go.release()

    us = lambda s: None if s is None else round(s * 1e6, 1)
    print(json.dumps({
        "mode": "peer",
        "peer": peer,
        "uncontended_cycles": len(cycles),
        "uncontended_cycles_per_s": round(len(cycles) / elapsed, 1),
        "uncontended_p50_us": us(quantile(cycles, 0.5)),
        "uncontended_p99_us": us(quantile(cycles, 0.99)),
        "handoff_rounds": len(handoffs),
        "handoff_p50_us": us(quantile(handoffs, 0.5)),
        "handoff_p99_us": us(quantile(handoffs, 0.99)),
        "handoff_max_us": us(max(handoffs)),
        "handoff_park_ms": PARK * 1e3,
    }))


if __name__ == "__main__":
    main()
