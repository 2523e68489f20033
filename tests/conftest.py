import os

# Tests are deterministic and single-threaded: the CI machine has 2 cores shared with nothing else,
# and onnxruntime's results do not depend on the thread count for these ops.
os.environ.setdefault("OMP_NUM_THREADS", "1")
