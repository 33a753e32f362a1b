"""The QuecPython DTU (docs/spec/quec.md): ``dtu_config.json``, its cloud protocol, the firmware."""
