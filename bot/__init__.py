"""The bot: settings, logging, pipeline assembly and the per-room entry point."""
