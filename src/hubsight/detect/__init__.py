"""Detections: normalized events in, deduplicated alerts and notables out.

Entry point for the collector: ``DetectionEngine.process(events: Sequence[Event]) -> list[Alert]``
on each batch right after it is stored, and ``DetectionEngine.tick(now)`` about once a minute for
the rules that watch silence. ``process`` returns the alerts created or changed by the batch (new
ones, ``revision == 1``, first) and has already committed them with the engine's state to
``<data_dir>/detect.sqlite3``. ``runtime.Detection.open(data_dir)`` bundles the engine with the
notifier: ``detection.on_stored(events)`` after each write, ``detection.tick(now)`` every minute,
``detection.close()`` at shutdown. One engine may be shared by the collectors of all sources.

    base.py       the rule contract: RuleMeta, RuleConfig, Finding, Example, Rule
    windows.py    event-time windows that re-check late events
    baseline.py   per-user baselines (countries, IPs, ASNs, devices, apps)
    engine.py     the streaming engine and its persisted state
    alerts.py     alerts, dedup, triage and history
    settings.py   detect.toml and run-time rule settings (enable, thresholds, exceptions)
    ruleset.py    building the rules to run
    runtime.py    opening the engine of a data directory; Detection = engine + notifier
    notify.py     webhook, syslog and SMTP notifications with dead letters
    outbox.py     notifications due, recorded with the alerts that make them due
    delivery.py   the thread that sends them, so no receiver holds up a collector
    sigma/        Sigma rules (azure product) through pySigma
    replay.py     events for backtests, from files or the store
    coverage.py   scoring against the simulator's ground truth
    rules/        the shipped rules, one module per family
"""
