"""The JSON a client sends (a request body, a WebSocket message), read the same way by every handler.

A client may send anything: bytes that are not UTF-8, `NaN` or `Infinity` (Python's `json` takes
them, JSON does not), a number too large to be finite, nesting deep enough to exhaust the stack,
megabytes. `read_json` turns each into a `JsonInputError` naming the problem, so a handler answers
400 and never 500. `shown` and `cut` shorten what a client sent for a message, so that a refused
megabyte is not echoed back whole, nor logged.
"""

import json
import math
import reprlib

from jupyter_server.base.handlers import APIHandler

# How many characters of a value a client sent an error message or a log line shows. The hub side
# cuts its refusals the same way (`sciencelab_spawner/user_options.py`); the sides share no code.
SHOWN_LENGTH = 80
# The deepest nesting a request may have. Our requests nest three levels at most
# ({"adapt": {"minimum": 1}}); a limit well below Python's recursion limit keeps every later
# repr, json.dumps and schema check of a request safe.
MAX_NESTING = 16
# Where `SciencelabApp` puts its `max_request_bytes` setting for the handlers.
MAX_BYTES_SETTING = "sciencelab_max_request_bytes"

_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 3
# Strings and numbers whole: `cut` shortens the text with the full length, reprlib only in the middle.
_SHORT_REPR.maxstring = _SHORT_REPR.maxlong = _SHORT_REPR.maxother = 2**31


class JsonInputError(ValueError):
    """What a client sent is not JSON this server reads: answered with a 400 and this message."""


def cut(text: str) -> str:
    """`text`, or its first `SHOWN_LENGTH` characters with an ellipsis and its length when longer."""
    if len(text) <= SHOWN_LENGTH:
        return text
    return f"{text[:SHOWN_LENGTH]}… ({len(text)} characters)"


def shown(value: object) -> str:
    """A value a client sent, as a message shows it: its repr, three levels deep, `cut` short."""
    return cut(_SHORT_REPR.repr(value))


def read_json(data: bytes | str, max_bytes: int, what: str = "body") -> object:
    """The JSON value in `data`; `JsonInputError` naming `what` and the problem if it is none.

    Refused: more than `max_bytes` bytes, bytes that are not UTF-8, text that is not JSON, `NaN`
    and `±Infinity`, numbers whose magnitude no float holds, whole numbers of more digits than
    Python converts, nesting deeper than `MAX_NESTING`.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JsonInputError(f"{what}: {size} bytes is more than the {max_bytes} bytes this server reads")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonInputError(
                f"{what}: not UTF-8 (byte {error.start} is {data[error.start]:#04x}); send JSON encoded as UTF-8"
            ) from None
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite, parse_int=_whole)
    except JsonInputError as error:
        raise JsonInputError(f"{what}: {error}") from None
    except json.JSONDecodeError as error:
        raise JsonInputError(f"{what}: not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise JsonInputError(f"{what}: nested deeper than {MAX_NESTING} levels") from None
    if _nesting(value) > MAX_NESTING:
        raise JsonInputError(f"{what}: nested deeper than {MAX_NESTING} levels")
    return value


def _refuse_constant(name: str):
    raise JsonInputError(f"{name} is not a number JSON allows; send a finite number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JsonInputError(f"{cut(text)} is too large for a number; send a finite number")
    return number


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than `sys.get_int_max_str_digits()`
        raise JsonInputError(f"a number of {len(text)} digits is more than Python reads; send a smaller one") from None


def _nesting(value: object) -> int:
    """How deep lists and objects nest in `value` (a scalar: 0), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class JsonAPIHandler(APIHandler):
    """An API handler that reads its JSON body with `read_json` and answers refusals itself.

    Refusals are written here rather than raised as `HTTPError`: tornado would log each one a
    second time, and its message is a %-format that a value with '%' breaks. The request's
    access-log line is the one line a refusal logs.
    """

    def json_body(self) -> object:
        """The request's JSON body (`None` when empty); `JsonInputError` when it is not one we read."""
        if not self.request.body:
            return None
        return read_json(self.request.body, self.settings[MAX_BYTES_SETTING])

    def refuse(self, status: int, message: str, **details):
        """Answer `{"message": message, **details}` with `status`.

        A detail whose JSON is longer than `SHOWN_LENGTH` (the refused value of a field, say) is
        sent as the text `shown` makes of it.
        """
        for name, value in details.items():
            if len(json.dumps(value, default=repr)) > SHOWN_LENGTH:
                details[name] = shown(value)
        self.set_status(status)
        self.finish(json.dumps({"message": message, **details}, default=repr))
