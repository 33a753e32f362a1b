"""Steering running units from outside: the control API (``server``) over a fleet in this
process (``controller``, ``attach``) or over ``--procs`` shards (``shards``), selectors,
pokes, the event stream, and ``vdtu ctl`` (``ctl``). docs/control-api.md is the contract."""
