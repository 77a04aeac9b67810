"""The listener bench: voice to voice as a person in the room hears it, hop by hop.

`listener` is the participant (speaks WAVs in real time, times what it hears), `hops`
turns the stand-ins' request stamps into a turn's hops, `run` holds the turns against
the real stack, `report` writes the JSON, the table and the PNG waterfall.
"""
