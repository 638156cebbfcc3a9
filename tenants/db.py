"""The declarative base and column types every persistent module shares."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, DateTime, MetaData, Numeric, String, any_, bindparam, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from tenants.clock import SYSTEM, Clock

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Money(TypeDecorator):
    """Exact decimal on every backend: SQLite has no decimal type, so it stores the text."""

    impl = Numeric(20, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(20, 4, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value)
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def utcnow() -> datetime:
    """The machine's time. Only for code that has no clock at hand (tests, scripts): use cases
    take `deps.clock`, and ORM timestamps come from the session's clock (see `stamped`)."""
    return SYSTEM.now()


def session_clock(session: Session) -> Clock:
    """The clock a session stamps with: set by whoever built its sessionmaker (info={"clock"})."""
    return session.info.get("clock") or SYSTEM


def stamped(*, on_update: bool = False, index: bool = False):
    """A timestamp column set from the session's clock at flush (created, or also updated).
    The default stays for Core inserts that bypass the session."""
    return mapped_column(DateTime, default=utcnow, index=index,
                         info={"stamp": "update" if on_update else "create"})


@event.listens_for(Session, "before_flush")
def _stamp(session: Session, _flush_context, _instances) -> None:
    if not (session.new or session.dirty):
        return
    now = session_clock(session).now()
    for obj in session.new:
        for attr, _kind in _stamped_attrs(type(obj)):
            if getattr(obj, attr) is None:
                setattr(obj, attr, now)
    for obj in session.dirty:
        attrs = _stamped_attrs(type(obj))
        if any(kind == "update" for _, kind in attrs) and session.is_modified(obj):
            for attr, kind in attrs:
                if kind == "update" and attr not in _changed(obj):
                    setattr(obj, attr, now)


_STAMPS: dict[type, tuple[tuple[str, str], ...]] = {}


def _stamped_attrs(cls) -> tuple[tuple[str, str], ...]:
    found = _STAMPS.get(cls)
    if found is None:
        mapper = getattr(cls, "__mapper__", None)
        found = tuple((prop.key, prop.columns[0].info["stamp"])
                      for prop in (mapper.column_attrs if mapper else ())
                      if "stamp" in prop.columns[0].info)
        _STAMPS[cls] = found
    return found


def _changed(obj) -> set[str]:
    from sqlalchemy import inspect

    state = inspect(obj)
    return {a.key for a in state.attrs if a.history.added}


class _InList(ColumnElement):
    """`column IN (:name)` for a list bound per execution (see `in_list`)."""

    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it is (no "= 1" where booleans are integers)
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("name", InternalTraversal.dp_string)]

    def __init__(self, column, name: str):
        self.column = column
        self.name = name


def in_list(column, name: str) -> ColumnElement:
    """`column` is one of the list bound as `name` at execution. PostgreSQL gets
    `column = ANY(:name)`, one array parameter: an expanding `IN` is rewritten (one parameter
    per element, by regular expression) on every execution, which cost the hot path's
    statements more than their own binding. Elsewhere (SQLite) it is the expanding `IN`."""
    return _InList(column, name)


@compiles(_InList)
def _in_list_default(element, compiler, **kw):
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(_InList, "postgresql")
def _in_list_postgresql(element, compiler, **kw):
    array = bindparam(element.name, type_=postgresql.ARRAY(element.column.type))
    return compiler.process(element.column == any_(array), **kw)
