"""The QuecPython DTU (seed 000): ``dtu_config.json``, the cloud JSON protocol and the firmware."""
