"""The fault catalogue (``catalogue``), what each fault does to a unit (``effects``), and the
faults in force on a unit (``active``). docs/faults.md describes every kind."""
