"""``@record(frozen=True, kw_only=...)``: what ``@dataclasses.dataclass(frozen=True, ...)`` gave the public value classes
(``ServicesConfig``, ``ServiceStatus``, ``ServicesStats``), without importing ``dataclasses`` when
the package is imported: ``dataclasses`` imports ``inspect``, about 12 ms of a function's cold
start (bench/HISTORY.md).

The class body stays a dataclass body (annotated fields with their defaults and docstrings). The
decorator adds ``__init__`` (keyword arguments, or positional ones in field order unless
``kw_only``), ``__repr__``, ``__eq__``, ``__hash__``, ``__match_args__``, ``__replace__`` and
frozen attributes (assignment raises ``dataclasses.FrozenInstanceError``). ``dataclasses.fields``,
``asdict``, ``replace`` and ``is_dataclass`` still work: ``__dataclass_fields__`` is built by
``dataclasses`` itself, from the same annotations and defaults, the first time it is read.
Type checkers see the plain dataclass (``TYPE_CHECKING`` below).
"""

from __future__ import annotations

__all__ = ["record"]

TYPE_CHECKING = False  # True for type checkers (mypy and pyright read any name TYPE_CHECKING so)

_MISSING = object()


class _LazyDataclassFields:
    """``__dataclass_fields__``, made by ``dataclasses`` on first read and then cached on the class."""

    def __get__(self, instance: object, owner: type) -> dict:
        import dataclasses

        shadow: type = dataclasses.dataclass(frozen=True, kw_only=getattr(owner, "_record_kw_only"))(type(owner.__name__, (), {
            "__annotations__": dict(owner.__annotations__),
            "__module__": owner.__module__,
            "__qualname__": owner.__qualname__,
            **getattr(owner, "_record_defaults"),
        }))
        fields: dict = getattr(shadow, "__dataclass_fields__")
        type.__setattr__(owner, "__dataclass_fields__", fields)
        type.__setattr__(owner, "__dataclass_params__", getattr(shadow, "__dataclass_params__"))
        return fields


def _frozen(self: object, name: str, *args: object) -> None:
    import dataclasses

    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _init_error(cls: type, text: str) -> TypeError:
    return TypeError(f"{cls.__qualname__}.__init__() {text}")


def _make(cls: type, names: tuple[str, ...], defaults: dict, kw_only: bool):  # noqa: ANN202
    required = frozenset(n for n in names if n not in defaults)
    known = frozenset(names)
    template = {n: defaults.get(n, _MISSING) for n in names}  # declaration order, kept by update()
    kind = "keyword-only" if kw_only else "positional"

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if args:
            if kw_only or len(args) > len(names):
                limit = 1 if kw_only else len(names) + 1
                raise _init_error(cls, f"takes {limit} positional argument{'s' if limit > 1 else ''} "
                                       f"but {len(args) + 1} were given")
            for name, value in zip(names, args):
                if name in kwargs:
                    raise _init_error(cls, f"got multiple values for argument {name!r}")
                kwargs[name] = value
        if not known.issuperset(kwargs):
            unknown = next(k for k in kwargs if k not in known)
            raise _init_error(cls, f"got an unexpected keyword argument {unknown!r}")
        if required and not required.issubset(kwargs):
            missing = [n for n in names if n in required and n not in kwargs]
            listed = " and ".join(", ".join(repr(n) for n in missing).rsplit(", ", 1))
            raise _init_error(cls, f"missing {len(missing)} required {kind} argument"
                                   f"{'s' if len(missing) > 1 else ''}: {listed}")
        values = template.copy()
        values.update(kwargs)
        object.__setattr__(self, "__dict__", values)

    def _astuple(self):  # type: ignore[no-untyped-def]
        d = self.__dict__
        return tuple(d[n] for n in names)

    def __repr__(self):  # type: ignore[no-untyped-def]
        d = self.__dict__
        return f"{type(self).__qualname__}(" + ", ".join(f"{n}={d[n]!r}" for n in names) + ")"

    def __eq__(self, other):  # type: ignore[no-untyped-def]
        if other.__class__ is self.__class__:
            return _astuple(self) == _astuple(other)
        return NotImplemented

    def __hash__(self):  # type: ignore[no-untyped-def]
        return hash(_astuple(self))

    def __replace__(self, **changes):  # type: ignore[no-untyped-def]
        return type(self)(**{**self.__dict__, **changes})

    return __init__, __repr__, __eq__, __hash__, __replace__


def _record(*, frozen: bool = True, kw_only: bool = False):  # noqa: ANN202
    if not frozen:
        raise NotImplementedError("record classes are frozen")

    def wrap(cls: type) -> type:
        names = tuple(cls.__annotations__)  # its own: every record class annotates its fields
        defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
        for name, fn in zip(("__init__", "__repr__", "__eq__", "__hash__", "__replace__"),
                            _make(cls, names, defaults, kw_only)):
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, fn)
        for name, value in (("__setattr__", _frozen), ("__delattr__", _frozen),
                            ("__match_args__", () if kw_only else names), ("_record_defaults", defaults),
                            ("_record_kw_only", kw_only), ("__dataclass_fields__", _LazyDataclassFields())):
            setattr(cls, name, value)
        return cls

    return wrap


if TYPE_CHECKING:
    from dataclasses import dataclass as record
else:
    record = _record
