"""Bridges between streamrnn and other libraries, on top of the models: PyTorch
(:mod:`streamrnn.adapters.torch`); the river and ONNX adapters will live here too."""
