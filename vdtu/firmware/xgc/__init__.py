"""The XGC DTU (seed 004): text protocol codec, state machine, actions and firmware."""
