"""Detections: normalized events in, deduplicated alerts and notables out.

Entry point for the collector: build a ``DetectionEngine`` once (``open_engine(data_dir)``), then
call ``engine.process(events)`` with each batch right after it is stored, and
``engine.tick(now)`` about once a minute for the rules that watch silence. ``process`` returns the
alerts created or changed by the batch (new ones first) and has already committed them with the
engine's state to ``<data_dir>/detect.sqlite3``; hand the new ones to ``Notifier.send``.

    base.py       the rule contract: RuleMeta, RuleConfig, Finding, Example, Rule
    windows.py    event-time windows that re-check late events
    baseline.py   per-user baselines (countries, IPs, ASNs, devices, apps)
    engine.py     the streaming engine and its persisted state
    alerts.py     alerts, dedup, triage and history
    settings.py   detect.toml and run-time rule settings (enable, thresholds, exceptions)
    ruleset.py    building the rules to run
    rules/        the shipped rules, one module per family
"""
