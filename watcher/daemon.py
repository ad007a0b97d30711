"""``watcher run``: the long-running scheduler (APScheduler 3, asyncio).

One event loop runs everything. Each target is an APScheduler job on its own interval with
jitter, ``coalesce`` and ``max_instances=1``; all jobs share one ``HostLimiter``, so per-host
politeness holds across targets while different hosts never wait on each other. The digest
and the outbox run on one worker thread with their own store connection, so a slow SMTP server
never stalls a check.

APScheduler adds each run's jitter (0..``jitter``) to the previous, already jittered, run, so a
target's mean period is ``interval + jitter/2``; the jitter spreads load, it is not a promise.

The *when* lives in ``watcher.scheduler`` (pure); this module wires it up and keeps the
process healthy for months: a crash in one check is logged and recorded as an ``error`` check;
an invalid config on reload is reported and the old one keeps running; SIGINT/SIGTERM let
checks in flight finish for ``stop_timeout`` seconds, then abandon them (a check writes the
store in one synchronous transaction, so cancelling it never leaves half a check behind).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import time as monotonic
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.check import TargetResult, check_targets
from watcher.config import Config, Target, load_config
from watcher.digest import first_check_time, is_queued, last_scheduled_end
from watcher.errors import WatcherError
from watcher.fetch import HostLimiter
from watcher.mailer import deliver_email, queue_digest
from watcher.notify import deliver_slack
from watcher.runtime import (
    DataDirGate,
    delivery_outcome,
    fields,
    register_secrets,
    run_lock,
    setup_logging,
)
from watcher.scheduler import (
    DIGEST_GRACE,
    DailyAt,
    catch_up_digest,
    digest_key,
    digest_window,
    misfire_grace,
    parse_stored_time,
    plan_first_runs,
    previous_digest_time,
)
from watcher.slack_client import REDACTOR
from watcher.store import Store, when

Clock = Callable[[], datetime]
Deliverer = Callable[[Store, Config, datetime], Any]

MAX_SPREAD = timedelta(minutes=5)  # overdue targets after a restart start within this


def _email(store: Store, config: Config, now: datetime) -> Any:
    return deliver_email(store, config, now=now)


def _slack(store: Store, config: Config, now: datetime) -> Any:
    return deliver_slack(store, config, now=now)


# Outbox channels the daemon retries every ``outbox_every`` seconds. A channel is one entry.
DELIVERERS: dict[str, Deliverer] = {"email": _email, "slack": _slack}


class Daemon:
    """One ``watcher run`` process. ``run()`` until ``stop()`` or a signal; tests drive it
    in-process with a short ``config_poll`` and their own ``deliverers``."""

    def __init__(
        self,
        config_path: Path,
        *,
        data_dir: Path | None = None,
        log_format: str = "text",
        clock: Clock = lambda: datetime.now(UTC),
        stop_timeout: float = 20.0,
        config_poll: float = 5.0,
        outbox_every: float = 60.0,
        deliverers: dict[str, Deliverer] | None = None,
        log_stream: Any = None,
    ) -> None:
        self.config_path = config_path
        self.log = setup_logging(log_format, log_stream, redact=REDACTOR)
        self.clock = clock
        self.stop_timeout = stop_timeout
        self.config_poll = config_poll
        self.outbox_every = outbox_every
        self.deliverers = DELIVERERS if deliverers is None else deliverers
        self.config = load_config(config_path)  # ConfigError: nothing has started yet
        register_secrets(self.config)
        self.data_dir = data_dir or self.config.data_dir
        self._data_dir_given = data_dir is not None
        self._config_stamp = self._stamp()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._specs: dict[str, tuple[timedelta, timedelta]] = {}
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="notify")
        self.scheduler: Any = None
        # Every job: a backlog runs once, never two at a time; lateness is allowed unless a
        # job says otherwise (checks and the digest do).
        self._job_defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGINT or SIGTERM (or ``stop()``); 0 after a clean stop."""
        loop = asyncio.get_running_loop()
        with run_lock(self.data_dir), Store(self.data_dir) as store:
            self.store = store
            self.notify_store = Store(self.data_dir)  # used only on the worker thread
            self.gate = DataDirGate(self.data_dir / Store.LOCK_FILE)
            self.limiter = self._new_limiter()
            self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=self._job_defaults)
            self.scheduler.start()
            signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
            for sig in signals[:2]:
                loop.add_signal_handler(sig, self._stopping.set)
            loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
            try:
                self._schedule(self.clock())
                await self._stopping.wait()
                clean = await self._stop()
            finally:
                for sig in signals:
                    loop.remove_signal_handler(sig)
            if clean:  # else a worker may still use it; the process exit closes it
                self.notify_store.close()
        return 0

    def _schedule(self, now: datetime) -> None:
        self._sync_checks(now)
        self._sync_digest(now, catch_up=True)
        every = IntervalTrigger(seconds=self.outbox_every, timezone=UTC)
        first = now + timedelta(seconds=1)
        self.scheduler.add_job(self._outbox_job, every, id="outbox", next_run_time=first)
        poll = IntervalTrigger(seconds=self.config_poll, timezone=UTC)
        self.scheduler.add_job(self._watch_config, poll, id="config")
        self.log.info(
            "started",
            extra=fields(pid=os.getpid(), targets=len(self.config.targets), data_dir=self.data_dir),
        )

    async def _stop(self) -> bool:
        """Let work in flight finish for ``stop_timeout``, then abandon it. True if all ended."""
        self.scheduler.pause()  # no new runs; in-flight ones carry on
        busy = {t for t in self._inflight if not t.done()}
        self.log.info("stopping", extra=fields(in_flight=len(busy), timeout=self.stop_timeout))
        late: set[asyncio.Task[Any]] = set()
        if busy:
            _, late = await asyncio.wait(busy, timeout=self.stop_timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=2)
                self.log.warning("abandoned", extra=fields(tasks=len(late)))
        self.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler.shutdown runs on the next loop iteration
        self._worker.shutdown(wait=False, cancel_futures=True)
        self.log.info("stopped")
        return not late

    def stop(self) -> None:
        self._stopping.set()

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    # --- checks ----------------------------------------------------------------------------

    def _new_limiter(self) -> HostLimiter:
        per_host = self.config.settings.per_host
        return HostLimiter(per_host.concurrency, per_host.delay.total_seconds())

    def _last_checked(self) -> dict[str, datetime | None]:
        rows = self.store.db.execute("SELECT target_id, MAX(checked_at) FROM checks GROUP BY 1")
        return {r[0]: parse_stored_time(r[1]) for r in rows}

    def _sync_checks(self, now: datetime) -> dict[str, list[str]]:
        """Make the jobs match the config. Unchanged targets keep their place in the cycle."""
        s = self.config.settings
        wanted = {t.id: (self.config.interval_of(t), s.jitter) for t in self.config.targets}
        removed = [i for i in self._specs if i not in wanted]
        for target_id in removed:
            self.scheduler.remove_job(f"check:{target_id}")
            del self._specs[target_id]
        changed = [t for t in self.config.targets if self._specs.get(t.id) != wanted[t.id]]
        spread = min([s.jitter, MAX_SPREAD, *(wanted[t.id][0] for t in changed)])
        plan = plan_first_runs(changed, self._last_checked(), now, self.config.interval_of, spread)
        for target in changed:
            interval, jitter = wanted[target.id]
            self.scheduler.add_job(
                self._check_job,
                IntervalTrigger(
                    seconds=interval.total_seconds(),
                    jitter=jitter.total_seconds() or None,
                    start_date=plan[target.id],
                    timezone=UTC,
                ),
                args=[target.id],
                id=f"check:{target.id}",
                name=target.id,
                next_run_time=plan[target.id],
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=misfire_grace(interval, jitter),
            )
            self._specs[target.id] = (interval, jitter)
        return {"changed": [t.id for t in changed], "removed": removed}

    async def _check_job(self, target_id: str) -> None:
        target = self.config.target(target_id)
        if target is None:  # removed by a reload after this run was submitted
            return
        self._track()
        async with self.gate.hold():
            now, started = self.clock(), monotonic.monotonic()
            try:
                await check_targets(
                    self.config,
                    [target],
                    self.store,
                    now=now,
                    limiter=self.limiter,
                    on_done=self._log_check,
                )
            except Exception as e:  # a weird page must never stop the watcher
                self._record_crash(target, now, monotonic.monotonic() - started, e)

    def _log_check(self, r: TargetResult) -> None:
        self.log.info(
            "check",
            extra=fields(
                target=r.target.id,
                state=r.state,
                outcome=r.outcome,
                status=r.http_status,
                duration=round(r.duration, 3),
                items=r.items,
                events=[e.kind for e in r.events],
                error=str(r.error) if r.error else None,
            ),
        )

    def _record_crash(self, target: Target, now: datetime, duration: float, e: Exception) -> None:
        message = f"{e.__class__.__name__}: {e}"[:500]
        self.log.error(
            "check",
            exc_info=e,
            extra=fields(
                target=target.id,
                state="error",
                outcome="error",
                duration=round(duration, 3),
                events=[],
                error=f"internal: {message}",
            ),
        )
        try:
            with self.store.transaction() as db:
                db.execute(
                    "INSERT INTO checks (target_id, checked_at, outcome, error_kind,"
                    " error_message, duration) VALUES (?,?,?,?,?,?)",
                    (target.id, when(now), "error", "internal", message, round(duration, 3)),
                )
        except Exception:
            self.log.exception("record", extra=fields(target=target.id))

    # --- digest and outbox (worker thread) -------------------------------------------------

    def _sync_digest(self, now: datetime, *, catch_up: bool = False) -> None:
        digest = self.config.notify.digest
        if self.scheduler.get_job("digest"):
            self.scheduler.remove_job("digest")
        if digest is None:
            return
        tz = ZoneInfo(self.config.settings.timezone)
        self.scheduler.add_job(
            self._digest_job,
            DailyAt(digest.at_time, tz),
            id="digest",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(DIGEST_GRACE.total_seconds()),
        )
        slot = previous_digest_time(now, digest.at_time, tz)
        db = self.store.db
        if catch_up and catch_up_digest(
            now,
            slot,
            already_queued=is_queued(db, digest_key(slot, tz)),
            first_check=first_check_time(db),
        ):
            self.log.info("digest catch-up", extra=fields(slot=slot.isoformat()))
            self.scheduler.add_job(self._digest_job, id="digest-catch-up", max_instances=1)
        next_run = self.scheduler.get_job("digest").next_run_time
        self.log.info("digest scheduled", extra=fields(next=next_run.isoformat()))

    async def _digest_job(self) -> None:
        self._track()
        await asyncio.get_running_loop().run_in_executor(self._worker, self._digest_blocking)

    def _digest_blocking(self) -> None:
        config, now = self.config, self.clock()
        digest = config.notify.digest
        if digest is None:
            return
        tz = ZoneInfo(config.settings.timezone)
        slot = previous_digest_time(now, digest.at_time, tz)  # the slot this run is for
        start, end = digest_window(
            slot, digest.at_time, tz, last_scheduled_end(self.notify_store.db)
        )
        key = digest_key(slot, tz)
        queued = queue_digest(
            self.notify_store, config, start=start, end=end, now=now, key=key, scheduled=True
        )
        self.log.info(
            "digest",
            extra=fields(key=key, status=queued.status, start=when(start), end=when(end)),
        )
        self._deliver("email", _email, now)

    async def _outbox_job(self) -> None:
        self._track()
        await asyncio.get_running_loop().run_in_executor(self._worker, self._outbox_blocking)

    def _outbox_blocking(self) -> None:
        now = self.clock()
        for channel, deliver in self.deliverers.items():
            self._deliver(channel, deliver, now)

    def _deliver(self, channel: str, deliver: Deliverer, now: datetime) -> None:
        try:
            result = deliver(self.notify_store, self.config, now)
        except Exception:
            self.log.exception("deliver", extra=fields(channel=channel))
            return
        subjects, count, error = delivery_outcome(result)
        for subject in subjects:
            self.log.info("delivered", extra=fields(channel=channel, subject=subject))
        if count and not subjects:
            self.log.info("delivered", extra=fields(channel=channel, sent=count))
        if error:
            self.log.warning("delivery failed", extra=fields(channel=channel, error=error))

    # --- reloads ---------------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.config_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    async def _watch_config(self) -> None:
        stamp = self._stamp()
        if stamp != self._config_stamp:
            self.reload("file changed")

    def reload(self, reason: str) -> bool:
        """Re-read the config. An invalid one is reported in one line and ignored."""
        self._config_stamp = self._stamp()  # report a bad file once, not every poll
        try:
            new = load_config(self.config_path)
        except WatcherError as e:
            self.log.error(
                "reload failed, keeping the running config",
                extra=fields(error=str(e), reason=reason),
            )
            return False
        register_secrets(new)
        old, self.config = self.config, new
        if new.data_dir != old.data_dir and not self._data_dir_given:
            self.log.warning("data_dir changed; restart watcher run to use it")
        if new.settings.per_host != old.settings.per_host:
            self.limiter = self._new_limiter()
        now = self.clock()
        diff = self._sync_checks(now)
        if (new.notify.digest, new.settings.timezone) != (old.notify.digest, old.settings.timezone):
            self._sync_digest(now)
        self.log.info("reloaded", extra=fields(reason=reason, targets=len(new.targets), **diff))
        return True


def run_daemon(config_path: Path, *, data_dir: Path | None, log_format: str) -> int:
    daemon = Daemon(config_path, data_dir=data_dir, log_format=log_format)
    return asyncio.run(daemon.run())
