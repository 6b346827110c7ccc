"""Host-C code of elementwise maps: one sample of an expression tree as straight-line ``double`` C.

Invariants:
    * Every node of the tree becomes one ``const double`` temporary (two, ``tNr``/``tNi``, for a complex value),
      so a complex product reuses its operands instead of duplicating their text; gcc keeps the loop
      vectorisable (no calls except libm's and the NaN-propagating helpers below).
    * Arithmetic is NumPy's: real operands of ``+ -`` with complex ones are promoted with imaginary part ``0.0``,
      a complex product is ``(ar*br - ai*bi, ar*bi + ai*br)``, ``abs`` of a complex value is
      ``sqrt(re*re + im*im)`` (NumPy uses hypot: the same to an ulp, no overflow at full scale) and ``angle`` is
      ``atan2(im + 0.0, re + 0.0)`` (``blocks.elementwise.angle``; C keeps ``x + 0.0`` without -ffast-math).
"""

from __future__ import annotations

from sigforge.dsp.blocks.elementwise import Expr

# NaN-propagating helpers for elementwise maps, as NumPy's maximum/minimum/sign; emitted only when used.
MAP_HELPERS = {
    "sf_max": "static double sf_max(double a, double b) { return (a != a || a > b) ? a : b; }",
    "sf_min": "static double sf_min(double a, double b) { return (a != a || a < b) ? a : b; }",
    "sf_sign": "static double sf_sign(double v) { return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : v); }",
}
_HELPERS_OF = {"maximum": ("sf_max",), "minimum": ("sf_min",), "clip": ("sf_max", "sf_min"), "sign": ("sf_sign",)}
_CALLS = {"abs": "fabs", "sqrt": "sqrt", "exp": "exp", "log10": "log10", "sign": "sf_sign", "maximum": "sf_max",
          "minimum": "sf_min"}  # fmt: skip
_INFIX = {"add": "+", "sub": "-", "mul": "*"}


def dlit(value: float) -> str:
    """A C double literal that round-trips exactly."""
    return repr(float(value))  # Python's shortest round-trip repr always has a "." or an exponent


Val = tuple[str, ...]  # C expressions (double): (value,) for a real value, (re, im) for a complex one


class MapCode:
    """Straight-line C (in ``double``) for one sample ``k`` of an elementwise expression, one temporary per node.

    Complex values are (re, im) pairs; a real operand of ``+ -`` with a complex one is promoted with imaginary
    part ``0.0`` (NumPy's promotion); ``real * complex`` scales both parts; ``angle`` adds ``0.0`` to each part
    so zeros of either sign count as +0 (``blocks.elementwise.angle``), which C keeps (no -ffast-math).
    """

    def __init__(self, srcs: list[str], complex_in: list[bool]) -> None:
        self.srcs, self.complex_in = srcs, complex_in
        self.lines: list[str] = []
        self.helpers: set[str] = set()

    def _tmp(self, *parts: str) -> Val:
        n = len(self.lines)
        names = [f"t{n}"] if len(parts) == 1 else [f"t{n}r", f"t{n}i"]
        decl = "const double " + ", ".join(f"{a} = {b}" for a, b in zip(names, parts, strict=True)) + ";"
        # np.real/np.imag of a complex value reads one part only: mark both used (no -Wunused-variable)
        self.lines.append(decl + ("" if len(parts) == 1 else f" (void){names[0]}; (void){names[1]};"))
        return tuple(names)

    def value(self, expr: Expr) -> Val:
        head = expr[0]
        if head == "in":
            src = self.srcs[expr[1]]
            if self.complex_in[expr[1]]:
                return (f"(double){src}[2 * k]", f"(double){src}[2 * k + 1]")
            return (f"(double){src}[k]",)
        if head == "const":
            v = expr[1]
            return (dlit(v.real), dlit(v.imag)) if isinstance(v, complex) else (dlit(v),)
        self.helpers.update(_HELPERS_OF.get(head, ()))
        args = [self.value(a) for a in expr[1:]]
        return self._tmp(*self._op(head, args))

    def _op(self, head: str, args: list[Val]) -> Val:  # noqa: PLR0911 - one branch per operation
        a = args[0]
        if head in _INFIX:
            b = args[1]
            if len(a) == len(b) == 1:
                return (f"{a[0]} {_INFIX[head]} {b[0]}",)
            if head == "mul" and len(a) == 1:
                return (f"{a[0]} * {b[0]}", f"{a[0]} * {b[1]}")
            if head == "mul" and len(b) == 1:
                return (f"{a[0]} * {b[0]}", f"{a[1]} * {b[0]}")
            if head == "mul":
                return (f"{a[0]} * {b[0]} - {a[1]} * {b[1]}", f"{a[0]} * {b[1]} + {a[1]} * {b[0]}")
            ar, ai = a if len(a) == 2 else (a[0], "0.0")
            br, bi = b if len(b) == 2 else (b[0], "0.0")
            return (f"{ar} {_INFIX[head]} {br}", f"{ai} {_INFIX[head]} {bi}")
        if head == "neg":
            return tuple(f"-{v}" for v in a)
        if head == "conj":
            return a if len(a) == 1 else (a[0], f"-{a[1]}")
        if head == "real":
            return (a[0],)
        if head == "imag":
            return (a[1],) if len(a) == 2 else ("0.0",)
        if head == "angle":
            return (f"atan2({a[1] if len(a) == 2 else '0.0'} + 0.0, {a[0]} + 0.0)",)
        if head == "abs" and len(a) == 2:
            return (f"sqrt({a[0]} * {a[0]} + {a[1]} * {a[1]})",)
        if head == "clip":
            return (f"sf_min(sf_max({a[0]}, {args[1][0]}), {args[2][0]})",)
        return (f"{_CALLS[head]}({', '.join(v[0] for v in args)})",)
