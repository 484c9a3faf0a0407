"""Run and export any Layer: ``export`` (``paddle.jit.save`` with a meta file naming the inputs,
their limits and the outputs), ``predictor`` (numpy in/out over ``paddle.inference`` or ONNX
Runtime, every input checked before paddle sees it), ``onnx`` (conversion with paddle2onnx)."""
