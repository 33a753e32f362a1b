"""The Textual dashboard (``vdtu tui``): a client of a running fleet's control API.

Nothing here reaches into a fleet's objects: every fact comes from the API
(docs/control-api.md) and every action is one of its requests, so the dashboard can
come and go without disturbing the units (an import-linter contract holds it to that).
"""
