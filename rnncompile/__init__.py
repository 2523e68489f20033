"""rnncompile: compile Keras-style recurrent models to verified ONNX.

Python API:
    model = rnncompile.load("spec.json")             # validate, infer shapes and masks
    outputs, states = rnncompile.reference(model, {"tokens": ids})
    result = rnncompile.build("spec.json", "out/")  # model.onnx + manifest + verification report
    session = rnncompile.open_session("out/")       # onnxruntime; carries stateful state
    session.run({"tokens": ids}); session.reset_states()
Custom layers: subclass rnncompile.Layer and decorate with @rnncompile.register.
"""
__version__ = "0.1.0"

from .errors import (InputError, LayerContractError, ModelFileError, PluginError, Problem,  # noqa: E402
                     RnnCompileError, RunError, SpecError, TargetError, VerificationError)
from .layer import Layer, LayerError, Sym, Tensor, TensorType, register  # noqa: E402
from .spec import Model, load_spec  # noqa: E402
from .build import BuildResult, build, load_model as load, open_session, verify_dir  # noqa: E402
from .reference import run_reference as reference  # noqa: E402
from .backends import runner_factory  # noqa: E402
from .backends.reference import ReferenceRunner  # noqa: E402
from .runtime import Session  # noqa: E402
from .targets import TARGETS, Target, get_target  # noqa: E402

__all__ = [
    "BuildResult", "InputError", "Layer", "LayerContractError", "LayerError", "Model", "ModelFileError",
    "PluginError", "Problem", "ReferenceRunner", "RnnCompileError", "RunError", "Session", "SpecError", "Sym",
    "TARGETS", "Target", "TargetError", "Tensor", "TensorType", "VerificationError", "build", "get_target", "load",
    "load_spec", "open_session", "reference", "register", "runner_factory", "verify_dir",
    "__version__",
]
