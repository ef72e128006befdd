"""Procedural RGB-D scenes with exact metric depth (ray casting in numpy), and a writer for them."""
