"""Realtime transcription sessions over WebSocket (OpenAI's GA Realtime API, intent=transcription)."""
