"""Generators: turn a cart into a picture (offline collage, Gemini)."""
