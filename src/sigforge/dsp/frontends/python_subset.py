"""The Python frontend: a small, statically translated subset of NumPy/SciPy, parsed with ``ast``.

The user's code is NEVER executed (no ``exec``/``eval``/``compile``/import of it). The module is walked
statement by statement; module-level constants and allow-listed design calls are folded by ``_consts``; the
entry function's body becomes IR nodes. Whatever falls outside the subset raises ``InvalidAlgorithm`` naming the
construct, its ``SourceLocation`` and what is supported instead.

Supported now: imports of ``numpy`` and ``scipy.signal`` (any usual spelling); module constants (including
allow-listed design calls and tuple unpacking ``b, a = butter(...)``); one entry function ``def f(x): ...`` made
of assignments and one final ``return``; ``lfilter(b, a, sig)`` (FIR or IIR), ``sosfilt(sos, sig)``,
``sig[::M]``, scaling by constants, and elementwise ``+ - *`` / numpy functions (see ``SUPPORTED``) on float32,
float64, complex64 and complex128 streams (type rules and the FM discriminator: ``_elementwise``).
"""

from __future__ import annotations

import ast
from fractions import Fraction
from typing import Any

from sigforge.dsp.blocks import RuleError, decimate
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.ports import PortParams
from sigforge.dsp.frontends import _consts as c
from sigforge.dsp.frontends import _elementwise, _frames, _streams
from sigforge.dsp.frontends._consts import Func, Module, fail, loc, short, source_text
from sigforge.dsp.frontends._design import DESIGN_CALLS, design_call, supported_calls
from sigforge.dsp.frontends._stmts import EntryFunction, bind_names, read_module
from sigforge.dsp.frontends._streams import Builder, Sig
from sigforge.dsp.ir import Graph, Op, verify
from sigforge.dsp.types import DType, StreamType
from sigforge.errors import InvalidAlgorithm

MAX_DEPTH = 100  # expression nesting; deeper is refused rather than risking Python's recursion limit
MAX_OUTPUTS = 16  # streams one entry function may return (each is one process() pointer and one file)
SUPPORTED = (
    "lfilter(b, a, sig), sosfilt(sos, sig), upfirdn(h, sig, up, down), sig[::M], sig + - * sig or constant, "
    "sig / constant, -sig, "
    "np.abs/sqrt/exp/log10/sign(sig), np.clip(sig, lo, hi), np.maximum/minimum(sig, c), "
    "np.real/imag/conj/angle(sig), np.angle(sig[1:] * np.conj(sig[:-1])), sig ** 2; " + _frames.SUPPORTED_FRAME
)

_FRIENDLY = {
    "Lambda": "lambda expression",
    "ListComp": "list comprehension",
    "GeneratorExp": "generator expression",
    "DictComp": "dict comprehension",
    "SetComp": "set comprehension",
    "IfExp": "conditional expression",
    "Compare": "comparison",
    "BoolOp": "boolean operator",
    "Dict": "dict literal",
    "Set": "set literal",
    "JoinedStr": "f-string",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield from",
    "NamedExpr": "assignment expression (:=)",
    "Starred": "starred expression",
}


class _Translator:
    def __init__(self, module_scope: dict[str, Any], builder: Builder, frame_length: int) -> None:
        self.scope = module_scope
        self.locals: dict[str, Any] = {}
        self.b = builder
        self.frame_length = frame_length
        self.depth = 0

    # -- names and attributes -------------------------------------------------------------------------------
    def lookup(self, node: ast.Name) -> Any:
        if node.id in self.locals:
            return self.locals[node.id]
        if node.id in self.scope:
            return self.scope[node.id]
        if node.id in ("exec", "eval", "compile", "__import__", "open", "getattr", "globals", "locals"):
            raise fail(node, f"`{node.id}` is not allowed: the translator never runs code; supported: {SUPPORTED}")
        raise fail(
            node,
            f"unknown name `{node.id}`: define it as a module-level constant or import it from numpy / scipy.signal",
        )

    def attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            raise fail(node, f"access to private attribute `{short(node)}` is not allowed")
        base = self.ev(node.value)
        if not isinstance(base, Module):
            raise fail(
                node,
                f"attribute access `{short(node)}` is not supported; only numpy / scipy.signal "
                "functions and constants can be named with dots",
            )
        qual = f"{base.qualname}.{node.attr}"
        if qual in c.KNOWN_MODULES:
            return Module(qual)
        if qual in c.MODULE_CONSTANTS:
            return c.MODULE_CONSTANTS[qual]
        if qual in c.STREAM_CALLS or qual in DESIGN_CALLS:
            return Func(qual)
        raise fail(node, f"`{short(node)}` ({qual}) is not supported; supported calls: {supported_calls()}")

    # -- expressions ----------------------------------------------------------------------------------------
    def ev(self, node: ast.expr) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise fail(node, f"expression nested more than {MAX_DEPTH} levels deep")
            return self._ev(node)
        finally:
            self.depth -= 1

    def _ev(self, node: ast.expr) -> Any:  # noqa: PLR0911 - one branch per AST node kind
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, bytes) or node.value is Ellipsis:
                raise fail(node, f"constant {node.value!r} is not supported")
            return c._check(node, node.value)
        if isinstance(node, ast.Name):
            return self.lookup(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.ev(e) for e in node.elts]
            if any(isinstance(i, (Sig, Module, Func)) for i in items):
                raise fail(node, "lists may hold only constants (signals cannot be collected in lists)")
            return tuple(items)
        if isinstance(node, ast.UnaryOp):
            value = self.ev(node.operand)
            if isinstance(value, Sig) and isinstance(node.op, (ast.USub, ast.UAdd)):
                return _elementwise.gain(self.b, node, value, -1.0 if isinstance(node.op, ast.USub) else 1.0)
            return c.fold_unary(node, value)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        kind = type(node).__name__
        raise fail(node, f"{_FRIENDLY.get(kind, kind)} is not supported; supported: {SUPPORTED}")

    def binop(self, node: ast.BinOp) -> Any:
        left, right = self.ev(node.left), self.ev(node.right)
        if not isinstance(left, Sig) and not isinstance(right, Sig):
            return c.fold_binop(node, left, right)
        framed = _frames.const_array(self.b, node, left, right)
        if framed is not None:
            return framed
        mapped = _elementwise.binop(self.b, node, left, right)
        if mapped is not None:
            return mapped
        op = type(node.op).__name__
        raise fail(node, f"operator {op} on signals (`{short(node)}`) is not supported yet; supported: {SUPPORTED}")

    def subscript(self, node: ast.Subscript) -> Any:
        value = self.ev(node.value)
        if not isinstance(value, Sig):
            raise fail(node, f"indexing constants (`{short(node)}`) is not supported")
        sl = node.slice
        if not isinstance(sl, ast.Slice) or sl.lower is not None or sl.upper is not None:
            raise fail(node, f"only decimation `sig[::M]` is supported, not `{short(node)}` (and `x[1:]`, `x[:-1]` "
                             "in the FM discriminator np.angle(x[1:] * np.conj(x[:-1])))")  # fmt: skip
        if sl.step is None:
            return value
        factor = self.ev(sl.step)
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise fail(sl.step, f"decimation factor must fold to a positive integer, got {factor!r}")
        if factor == 1:
            return value
        params = DecimateParams(factor)
        try:
            out = decimate.infer(params, [self.b.stream(value)])
        except RuleError as exc:
            raise fail(node, f"`{short(node)}`: {exc}") from None
        return self.b.add(Op.DECIMATE, params, (value.node_id,), out, node)

    def call(self, node: ast.Call) -> Any:  # noqa: PLR0911, PLR0912 - one branch per family of calls
        func = self.ev(node.func)
        if not isinstance(func, Func):
            raise fail(node, f"call of `{short(node.func)}` is not supported; supported calls: {supported_calls()}")
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise fail(node, "*args / **kwargs in calls are not supported")
        if func.qualname == "numpy.angle":
            fm = _elementwise.discriminator(self.b, node, self.ev, self._names_conj)
            if fm is not None:
                return fm
        args = [self.ev(a) for a in node.args]
        kwargs = {k.arg: self.ev(k.value) for k in node.keywords if k.arg is not None}
        if func.qualname == "scipy.signal.lfilter":
            return _streams.lfilter(self.b, node, args, kwargs)
        if func.qualname == "scipy.signal.sosfilt":
            return _streams.sosfilt(self.b, node, args, kwargs)
        if func.qualname == "scipy.signal.upfirdn":
            return _streams.upfirdn(self.b, node, args, kwargs)
        if func.qualname in ("numpy.asarray", "numpy.array") and len(args) == 1 and isinstance(args[0], Sig):
            if kwargs:
                raise fail(node, f"`{short(node.func)}` of a signal takes no keywords (the dtype is the request's)")
            return args[0]  # the signal already is an array of the request's dtype
        if func.qualname in c.FRAME_CALLS:
            return _frames.call(self.b, node, func, args, kwargs)
        if func.qualname in c.STREAM_CALLS:
            return _elementwise.numpy_call(self.b, node, func, args, kwargs)
        for i, a in enumerate([*args, *kwargs.values()]):
            if isinstance(a, (Sig, Module, Func)):
                what = "a signal" if isinstance(a, Sig) else "not a constant"
                raise fail(
                    node, f"design-time call `{short(node.func)}` needs constant arguments; argument {i + 1} is {what}"
                )
        return design_call(node, func, args, kwargs)

    def _names_conj(self, func: ast.expr) -> bool:
        value = self.ev(func) if isinstance(func, (ast.Name, ast.Attribute)) else None
        return isinstance(value, Func) and value.qualname in ("numpy.conj", "numpy.conjugate")

    # -- statements -----------------------------------------------------------------------------------------
    def run(self, entry: EntryFunction) -> list[tuple[Sig, ast.AST]]:
        """Every returned stream with its expression: one, or one per element of ``return y1, y2, ...``."""
        for stmt in entry.body:
            if isinstance(stmt, ast.Return):
                if stmt.value is None:
                    raise fail(stmt, "the entry function must return a signal")
                parts = stmt.value.elts if isinstance(stmt.value, ast.Tuple) else [stmt.value]
                if not parts or len(parts) > MAX_OUTPUTS:
                    raise fail(stmt, f"the entry function must return 1..{MAX_OUTPUTS} signals, got {len(parts)}")
                results: list[tuple[Sig, ast.AST]] = []
                for part in parts:
                    value = self.ev(part)
                    if not isinstance(value, Sig):
                        where = stmt if len(parts) == 1 else part
                        raise fail(where, f"the entry function must return signals computed from `{entry.param}`, "
                                   "not a constant")  # fmt: skip
                    results.append((value, part))
                return results
            target, value_node = stmt  # an assignment `name = expr` or `a, b = expr`, validated by read_module
            bind_names(self.locals, target, self.ev(value_node), value_node)
        raise fail(entry.node, f"function `{entry.name}` has no return statement")


def _fold_constant(node: ast.expr, scope: dict[str, Any]) -> Any:
    """Fold a module-level expression; no signal exists at module level, so the result is a constant."""
    return _Translator(scope, Builder("<module>"), 1).ev(node)


def parse_python(source: str, *, frame_length: int, input_dtype: DType, entry: str | None = None) -> Graph:
    """Translate Python source to a verified (unoptimised) IR graph; see :func:`_parse_python`."""
    with source_text(source):
        return _parse_python(source, frame_length=frame_length, input_dtype=input_dtype, entry=entry)


def _parse_python(source: str, *, frame_length: int, input_dtype: DType, entry: str | None = None) -> Graph:
    """Translate Python source to a verified (unoptimised) IR graph.

    Args:
        source: the module's text.
        frame_length: input samples per frame.
        input_dtype: dtype of the input stream.
        entry: the function to translate; by default the single public top-level function.

    Returns:
        The graph named after the entry function, with one input (the parameter) and one output ``y`` (or, for
        ``return a, b, ...``, outputs ``y0``, ``y1``, ... in that order; a name equal to the parameter gets
        ``_out`` appended).

    Raises:
        InvalidAlgorithm: malformed Python or anything outside the subset, with its location.
        InvalidInput: a frame length that a frame operation cannot use (a constant array of another length), with
            pointer ``frame_length``. Frame lengths that a decimation or ``upfirdn`` does not divide are accepted:
            the streams after it carry a varying number of samples per frame (``types.StreamType``); a frame
            operation on such a stream is refused (``InvalidAlgorithm`` at the call) with the frame lengths that work.
    """
    scope, fn = read_module(source, entry, _fold_constant)
    builder = Builder(fn.name)
    src = builder.add(
        Op.INPUT, PortParams(fn.param), (), StreamType(input_dtype, frame_length, Fraction(1)), fn.node.args.args[0]
    )
    translator = _Translator(scope, builder, frame_length)
    translator.locals[fn.param] = src
    try:
        result = translator.run(fn)
    except RecursionError:
        raise InvalidAlgorithm("expression nested too deeply", location=loc(fn.node)) from None
    for i, (value, _expr) in enumerate(result):
        out_name = "y" if len(result) == 1 else f"y{i}"
        out_name = out_name if out_name != fn.param else f"{out_name}_out"
        builder.add(Op.OUTPUT, PortParams(out_name), (value.node_id,), builder.stream(value), fn.node)
    graph = Graph(fn.name, tuple(builder.nodes))
    verify(graph)
    return graph
