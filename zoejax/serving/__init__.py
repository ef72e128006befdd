"""Serving artefacts: the jitted predict function exported as StableHLO (``stablehlo.py``) or ONNX (``onnx.py``)."""
