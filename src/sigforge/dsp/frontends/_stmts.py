"""Statement-level rules of the Python frontend: imports, module constants and the entry function's shape.

Invariants: the source is only parsed (``ast.parse``), never compiled or run. Each accepted statement kind is
listed here explicitly; anything else is refused with its location. Module constants are folded in source order
by the callback the caller provides, so a name is usable only after its definition, as in Python.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigforge.dsp.frontends._consts import KNOWN_MODULES, MODULE_CONSTANTS, Func, Module, fail
from sigforge.errors import InvalidAlgorithm, SourceLocation

Fold = Callable[[ast.expr, dict[str, Any]], Any]

_STATEMENT_NAMES = {
    "For": "for loop",
    "AsyncFor": "async for loop",
    "While": "while loop",
    "If": "if statement",
    "With": "with statement",
    "AsyncWith": "async with statement",
    "Try": "try statement",
    "TryStar": "try statement",
    "Raise": "raise statement",
    "Assert": "assert statement",
    "Delete": "del statement",
    "Global": "global statement",
    "Nonlocal": "nonlocal statement",
    "ClassDef": "class definition",
    "AsyncFunctionDef": "async function",
    "FunctionDef": "nested function",
    "Import": "import inside a function",
    "ImportFrom": "import inside a function",
    "Expr": "expression statement (its value would be discarded)",
    "Match": "match statement",
    "Pass": "pass statement",
}
_IMPORT_HELP = "supported imports: numpy (as np), scipy.signal (import scipy.signal / from scipy import signal)"


@dataclass(frozen=True, slots=True)
class EntryFunction:
    """The validated entry function: its name, its one parameter and its body as simple steps.

    ``body`` holds ``(target_name, expression)`` pairs for assignments and ends with the ``ast.Return``.
    """

    name: str
    param: str
    node: ast.FunctionDef
    body: tuple[Any, ...]


def parse(source: str) -> ast.Module:
    """``ast.parse`` with every parser failure turned into a located ``InvalidAlgorithm``."""
    try:
        return ast.parse(source, filename="<algorithm>", mode="exec")
    except SyntaxError as exc:
        line = exc.lineno or 1
        column = max((exc.offset or 1) - 1, 0)  # SyntaxError offsets are 1-based; ast columns are 0-based
        end_col = exc.end_offset - 1 if exc.end_offset else None
        location = SourceLocation(line, column, exc.end_lineno, end_col)
        raise InvalidAlgorithm(f"malformed Python: {exc.msg}", location=location) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InvalidAlgorithm(f"malformed Python: {exc}") from None


def _statement_error(stmt: ast.stmt, where: str) -> InvalidAlgorithm:
    kind = type(stmt).__name__
    return fail(
        stmt,
        f"{_STATEMENT_NAMES.get(kind, kind)} is not supported {where}; the entry function may "
        "contain only assignments `name = expression` and one final `return`",
    )


def _bind_import(stmt: ast.Import | ast.ImportFrom, scope: dict[str, Any]) -> None:  # noqa: PLR0912
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            if alias.name not in KNOWN_MODULES:
                raise fail(alias, f"import of `{alias.name}` is not allowed; {_IMPORT_HELP}")
            if alias.asname:
                scope[alias.asname] = Module(alias.name)
            else:  # `import scipy.signal` binds `scipy`
                top = alias.name.split(".")[0]
                scope[top] = Module(top)
        return
    if stmt.module == "__future__":
        return
    if stmt.level or stmt.module not in KNOWN_MODULES:
        raise fail(stmt, f"import from `{'.' * stmt.level}{stmt.module or ''}` is not allowed; {_IMPORT_HELP}")
    for alias in stmt.names:
        qual = f"{stmt.module}.{alias.name}"
        bound = alias.asname or alias.name
        if alias.name == "*":
            raise fail(alias, "`import *` is not supported; import names explicitly")
        if qual in KNOWN_MODULES:
            scope[bound] = Module(qual)
        elif qual in MODULE_CONSTANTS:
            scope[bound] = MODULE_CONSTANTS[qual]
        else:
            from sigforge.dsp.frontends._consts import STREAM_CALLS
            from sigforge.dsp.frontends._design import DESIGN_CALLS

            if qual not in DESIGN_CALLS and qual not in STREAM_CALLS:
                raise fail(alias, f"`{qual}` is not supported; supported: {', '.join([*STREAM_CALLS, *DESIGN_CALLS])}")
            scope[bound] = Func(qual)


def _is_main_guard(stmt: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` blocks never run on import, so they are ignored (not translated)."""
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    t = stmt.test
    return (
        isinstance(t.left, ast.Name)
        and t.left.id == "__name__"
        and len(t.ops) == 1
        and isinstance(t.ops[0], ast.Eq)
        and isinstance(t.comparators[0], ast.Constant)
        and t.comparators[0].value == "__main__"
    )


Target = str | tuple[str, ...]


def bind_names(scope: dict[str, Any], target: Target, value: Any, at: ast.AST) -> None:
    """Bind ``name = value`` or unpack ``a, b = value`` (a constant tuple, e.g. ``butter``'s ``(b, a)``)."""
    if isinstance(target, str):
        scope[target] = value
        return
    if not isinstance(value, tuple) or len(value) != len(target):
        got = f"{len(value)} values" if isinstance(value, tuple) else "a single value"
        raise fail(at, f"cannot unpack {got} into {len(target)} names ({', '.join(target)})")
    for name, item in zip(target, value, strict=True):
        scope[name] = item


def _assignment(stmt: ast.stmt) -> tuple[Target, ast.expr] | None:
    """``name = expr``, ``a, b = expr``, ``name: T = expr`` or ``name op= expr`` as (target, expr), else None."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id, stmt.value
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], (ast.Tuple, ast.List))
        and stmt.targets[0].elts
        and all(isinstance(e, ast.Name) for e in stmt.targets[0].elts)
    ):
        return tuple(e.id for e in stmt.targets[0].elts if isinstance(e, ast.Name)), stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        return stmt.target.id, stmt.value
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        name = ast.Name(stmt.target.id, ast.Load())
        expr = ast.BinOp(name, stmt.op, stmt.value)
        ast.copy_location(name, stmt.target)
        ast.copy_location(expr, stmt)
        return stmt.target.id, expr
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        raise fail(stmt, "only assignments to plain names (`y = ...` or `b, a = ...`) are supported "
                         "(no chained, starred, attribute or item targets)")  # fmt: skip
    return None


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _entry(fn: ast.FunctionDef) -> EntryFunction:
    if fn.decorator_list:
        raise fail(fn.decorator_list[0], "decorators are not supported")
    a = fn.args
    if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults or len(a.args) != 1:
        raise fail(
            fn, f"function `{fn.name}` must take exactly one parameter, the input signal (e.g. `def {fn.name}(x):`)"
        )
    body: list[Any] = []
    for i, stmt in enumerate(fn.body):
        if i == 0 and _is_docstring(stmt):
            continue
        if body and isinstance(body[-1], ast.Return):
            raise fail(stmt, "statements after `return` are not supported")
        pair = _assignment(stmt)
        if pair is not None:
            body.append(pair)
        elif isinstance(stmt, ast.Return):
            body.append(stmt)
        else:
            raise _statement_error(stmt, "in the entry function")
    return EntryFunction(fn.name, a.args[0].arg, fn, tuple(body))


def read_module(source: str, entry: str | None, fold: Fold) -> tuple[dict[str, Any], EntryFunction]:
    """Walk the module: bind imports, fold constants, pick and validate the entry function.

    Args:
        source: the module text.
        entry: the entry function name, or None for "the single public function".
        fold: folds a constant expression in a scope (the expression evaluator of the frontend).

    Returns:
        The module scope (name -> Module, Func or constant) and the entry function.
    """
    tree = parse(source)
    scope: dict[str, Any] = {}
    functions: list[ast.FunctionDef] = []
    for i, stmt in enumerate(tree.body):
        if i == 0 and _is_docstring(stmt):
            continue
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            _bind_import(stmt, scope)
        elif isinstance(stmt, ast.FunctionDef):
            functions.append(stmt)
        elif _is_main_guard(stmt):
            continue
        elif (pair := _assignment(stmt)) is not None:
            bind_names(scope, pair[0], fold(pair[1], scope), pair[1])
        else:
            kind = type(stmt).__name__
            raise fail(
                stmt,
                f"{_STATEMENT_NAMES.get(kind, kind)} is not supported at module level; a module may "
                "hold imports, constant assignments and the entry function",
            )
    if entry is not None:
        chosen = [f for f in functions if f.name == entry]
        if not chosen:
            names = ", ".join(f.name for f in functions) or "none"
            raise InvalidAlgorithm(f"entry function `{entry}` is not defined (functions: {names})", pointer="/entry")
        return scope, _entry(chosen[0])
    public = [f for f in functions if not f.name.startswith("_")]
    if len(public) != 1:
        names = ", ".join(f.name for f in public) or "none"
        raise InvalidAlgorithm(
            f"expected exactly one public top-level function, found {len(public)} ({names}); name the one to "
            "translate with `entry`",
            location=None if not public else fail(public[1], "").location,
            pointer="/entry",
        )
    return scope, _entry(public[0])
