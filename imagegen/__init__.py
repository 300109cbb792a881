"""The Online Boutique image generation service."""
