"""Sigma rules for the ``azure`` product, converted by pySigma into predicates on raw records.

fields.py     the azure logsource services: their records and where Sigma's fields are
pipeline.py   the pySigma processing pipeline (logsource check, field check and mapping)
backend.py    the pySigma backend whose queries are Python predicates
record.py     the raw record as predicates read it, decoded once per event
detection.py  a single-event rule: its predicate on each event's record
index.py      a kind of event's single-event rules as one matcher, indexed by required values
correlation.py  a correlation rule: its base rules' events in event-time windows per group
loader.py     files in, rules out, with the reason for every document that does not load
"""

from hubsight.detect.sigma.correlation import SigmaCorrelation
from hubsight.detect.sigma.detection import SigmaDetection
from hubsight.detect.sigma.loader import (
    LOADED,
    SigmaLoad,
    SigmaLoader,
    load_sigma_file,
    load_sigma_rules,
)

__all__ = [
    "LOADED",
    "SigmaCorrelation",
    "SigmaDetection",
    "SigmaLoad",
    "SigmaLoader",
    "load_sigma_file",
    "load_sigma_rules",
]
