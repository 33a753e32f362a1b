"""DTU firmware personalities: ``xgc`` speaks the XGC text protocol (seed 004)."""
