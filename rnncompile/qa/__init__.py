"""Quality assurance outside the compiler: `rnncompile conformance` (conformance.py with its
suites in onnx_cases.py, goldens.py and the generated specs of specgen.py) and `rnncompile bench`
(bench.py, flops.py).

The compiler never imports this package (tests/test_boundaries.py scans every other module's
imports); the CLI imports it inside the `conformance` and `bench` commands only. QA code runs
models through runner factories (rnncompile.backends) like every other caller, and may import
onnx and onnxruntime (for the ONNX project's test cases and version strings).
"""
