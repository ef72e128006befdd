"""Encoder families (one module per family) and the registry that maps a backbone kind to them."""
