"""perfcast's runtime: run IR graphs on CPU (interpreter, lowering, planner, backends).

``perfcast.runtime.compile(model, example_inputs)`` is the entry point; note that the
name is the function, while the module stays importable as ``perfcast.runtime.compile``
through ``from perfcast.runtime.compile import ...``.
"""

from perfcast.runtime.compile import (
    BackendUnavailable,
    CompiledModel,
    RuntimeInputError,
    compile,
    compile_graph,
)
from perfcast.runtime.decode import DecodeError, KVDecoder
from perfcast.runtime.interpret import InterpretError, eval_node, run_graph
from perfcast.runtime.lower import RuntimeLoweringError, lower
from perfcast.runtime.planner import PlanReport, plan
from perfcast.runtime.program import Buf, Program, Step

__all__ = ["BackendUnavailable", "Buf", "CompiledModel", "DecodeError", "InterpretError",
           "KVDecoder", "PlanReport", "Program", "RuntimeInputError", "RuntimeLoweringError",
           "Step", "compile", "compile_graph", "eval_node", "lower", "plan", "run_graph"]
