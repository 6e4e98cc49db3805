"""The delivery thread: one thread sends the notifications due, so no receiver holds up detection.

The engine records what is due in the outbox inside each save (``outbox``); the collector's
thread then only wakes this thread (``wake``), and goes on storing and detecting while a slow
webhook or mail relay takes its time. One thread sends, oldest row first, as one thread did
before, so alerts reach each target in the order they were made, and an alert's row is always
settled before its follow-up's turn.

At shutdown (``close``) it keeps sending what is due for a grace period, then stops after the
delivery in flight (one attempt: the pauses between retries are cut short); what is left stays
due and is sent at the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hubsight.detect import outbox
from hubsight.detect.db import DetectDB
from hubsight.detect.notify import Notifier, NotifyReport

log = logging.getLogger(__name__)


class Deliverer:
    """Sends what is due on a thread of its own, started by the first ``wake``."""

    def __init__(
        self,
        db: DetectDB,
        notifier: Callable[[], Notifier],
        on_report: Callable[[NotifyReport], None] = lambda _report: None,
    ) -> None:
        self._db = db
        # The notifier of the moment: settings applied while it runs take effect at once.
        self._notifier = notifier
        self._on_report = on_report
        self._changed = threading.Condition()
        # Wakes asked for, and the last one whose rows were all tried: a pass that begins after
        # wake N reads every row queued before it (each save commits before it wakes).
        self._asked = 0
        self._done = 0
        self._closing = False
        # Set at shutdown once the grace is over: stop after the delivery in flight.
        self._halted = False
        self._thread: threading.Thread | None = None
        # One pass at a time (the thread, or a caller of ``deliver``), lest a row go twice.
        self._delivering = threading.Lock()
        # Whether the last pass failed: a store failing for hours logs its traceback once, then
        # a line per pass, and a line when sending works again.
        self._failing = False

    def wake(self) -> None:
        """Have the thread send what is due now (after a save committed, at start)."""
        with self._changed:
            if self._closing:
                return
            self._asked += 1
            self._changed.notify_all()
            thread = self._thread
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._run, name="notify", daemon=True)
                self._thread = thread
                thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait until what was due at the last ``wake`` was tried (sent, dead-lettered or
        dropped); whether it was within ``timeout`` seconds."""
        with self._changed:
            asked = self._asked
            return self._changed.wait_for(lambda: self._done >= asked, timeout)

    def deliver(self) -> NotifyReport:
        """Send what is due, on the caller's thread, one pass at a time."""
        with self._delivering:
            report = self._notifier().deliver()
        self._on_report(report)
        return report

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._asked > self._done or self._closing)
                if self._halted or (self._closing and self._asked <= self._done):
                    return
                asked = self._asked
            try:
                report: NotifyReport | None = self.deliver()
            except Exception as exc:  # noqa: BLE001 - logged; the rows stay due for the next wake
                self._failed(exc)
                report = None
            else:
                if self._failing:
                    self._failing = False
                    log.info("notifications due are being sent again")
            with self._changed:
                # Stopped early: the notifier was replaced (the next pass takes the new one),
                # or shutdown halted it (the loop ends).
                if report is None or not report.stopped:
                    self._done = max(self._done, asked)
                    self._changed.notify_all()

    def _failed(self, exc: Exception) -> None:
        if self._failing:
            log.warning("notifications due still could not be sent: %s", exc)
            return
        self._failing = True
        log.exception(
            "notifications due could not be sent; they are tried again after the next batch or "
            "tick (this is logged once with its traceback, then a line per failing pass)"
        )

    def close(self, grace_s: float) -> int:
        """Send what is due for up to ``grace_s`` seconds, then stop after the delivery in
        flight; how many notifications are left due (sent at the next start)."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(grace_s)
            if thread.is_alive():
                log.info(
                    "notifications still due after the shutdown's grace of %g s: stopping "
                    "after the delivery in flight",
                    grace_s,
                )
                with self._changed:
                    self._halted = True
                    self._changed.notify_all()
                self._notifier().stop()
                # A channel's attempt ends within its timeout; waiting for it keeps a
                # notification the receiver accepted from being sent again at the next start.
                thread.join()
        left = outbox.count(self._db)
        if left:
            log.warning(
                "%d notifications due were not sent before the shutdown; they are sent at the "
                "next start",
                left,
            )
        return left
