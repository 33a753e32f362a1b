"""The latency histogram of the load reports: ``vdtu.histogram``, named here for them.

It lives in ``vdtu.histogram`` (pure, the lowest layer) so the control API, below the
load test, can time what the fleet's links do with the same buckets.
"""

from vdtu.histogram import QUANTILES, LatencyHistogram, Percentiles, ReportFormatError

__all__ = ["QUANTILES", "LatencyHistogram", "Percentiles", "ReportFormatError"]
