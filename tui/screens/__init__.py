"""The dashboard's screens: fleet, unit, faults, spawn and power, help."""
