"""The session server: LiveKit tokens, one bot process per room, operator endpoints."""
