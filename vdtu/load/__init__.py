"""Fleet load testing: uplink payloads, delivery tracking and the run report (all pure)."""
