"""Local servers that speak the engines' wire protocols.

Each server is a thin protocol layer (vLLM's Voxtral endpoints, Chatterbox's speech
endpoints, OpenAI chat completions) over a pluggable backend. Tests plug in scripted
backends with fault knobs; the local mode plugs in real small models. The bot cannot
tell the difference: it reaches every engine only through its protocol and URL.
"""
