"""DTU firmware personalities: ``xgc`` speaks the XGC text protocol (docs/spec/xgc.md), ``quec``
the QuecPython JSON protocol (docs/spec/quec.md)."""
