"""Classifying face crops with a trained checkpoint.

predictor (a checkpoint ready to score crops), engines (PyTorch fp32/bf16, ONNX Runtime, int8) and
probe (which engine is fastest here, measured once per machine), calibration (int8 calibration
images), export (ONNX and TorchScript, verified), evaluate (a checkpoint's figures on a dataset) and
operating (the operating points and the unsure band picked on validation).
"""
