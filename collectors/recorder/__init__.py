"""Durable history: every tick's samples and the agent's events in append-only segments.

format.py (framing, sample <-> integer rows), writer.py (the recorder thread), reader.py
(scan, seek by time, decode), retention.py (age and size limits), events.py (durable events).
"""
