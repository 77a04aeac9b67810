"""Project scripts that are Python modules (`python -m scripts.launch`)."""
