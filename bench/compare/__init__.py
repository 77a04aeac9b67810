"""`python -m bench compare`: our bot and LiveKit Agents, side by side on one stack.

`peer` runs the LiveKit Agents worker and opens rooms it serves, `systems` gives every
compared system the same "open a room with a listener in it" face, `measure` reads CPU
and memory from /proc, `scenarios` holds the turns, `report` writes JSON, table, plots.
"""
