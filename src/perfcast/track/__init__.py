"""Regression detection over the run history in the store (``perfcast track``).

Every (target, params, environment) timing series and every prediction-accuracy series is
searched for change points; a change is reported when it is significant, larger than a
minimum effect and larger than the series' own noise, with a severity by size.
"""

from perfcast.track.changepoint import (
    Change,
    Detection,
    DetectorConfig,
    Segment,
    detect,
    min_points,
)
from perfcast.track.report import ReportedChange, SeriesReport, TrackReport, analyze, track
from perfcast.track.series import Point, Series, load_series
from perfcast.track.severity import (
    DEFAULTS,
    SEVERITIES,
    ThresholdBook,
    ThresholdError,
    Thresholds,
)

__all__ = [
    "DEFAULTS",
    "SEVERITIES",
    "Change",
    "Detection",
    "DetectorConfig",
    "Point",
    "ReportedChange",
    "Segment",
    "Series",
    "SeriesReport",
    "ThresholdBook",
    "ThresholdError",
    "Thresholds",
    "TrackReport",
    "analyze",
    "detect",
    "load_series",
    "min_points",
    "track",
]
