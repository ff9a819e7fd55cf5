# msgpack for slurmpool's Python workers: the `msgpack` package when it can be imported (a C extension,
# fast), else a small pure-Python codec with the same results. Both read what the agent writes with
# msgpackr (plain maps, no records, msgpackr's extensions for typed arrays, undefined, BigInt, Date,
# Set, Error and RegExp) and write what msgpackr reads back the same way.
#
#   SLURMPOOL_PY_CODEC=builtin   always the pure-Python codec
#   SLURMPOOL_PY_CODEC=msgpack   the package, or an error when it cannot be imported
#   (unset or auto)              the package when importable, else the pure-Python codec
import array
import datetime as _dt
import os
import struct
import sys

SHARED_KEY = "$slurmpoolShared"

# msgpackr's extension types.
EXT_UNDEFINED = 0x00
EXT_BIGINT = 0x42  # 'B': big-endian two's complement, any length
EXT_ERROR = 0x65  # 'e': fixext1, then [name, message, cause] as the next value
EXT_SET = 0x73  # 's': fixext1, then the elements as an array, the next value
EXT_TYPED = 0x74  # 't': one byte naming the typed array, then its bytes (little-endian)
EXT_REGEXP = 0x78  # 'x': fixext1, then [source, flags] as the next value
EXT_TIMESTAMP = -1

# msgpackr's typed-array codes (its `typedArrays` list) and the array module's type codes.
_TYPED_FORMATS = {0: "b", 1: "B", 2: "B", 3: "h", 4: "H", 5: "i", 6: "I", 7: "f", 8: "d", 9: "q", 10: "Q"}
for _code, _fmt in list(_TYPED_FORMATS.items()):
    # 'i'/'I' are 4 bytes on every platform Python runs slurmpool on; check rather than assume.
    _size = {0: 1, 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 8: 8, 9: 8, 10: 8}[_code]
    if array.array(_fmt).itemsize != _size:
        _TYPED_FORMATS[_code] = {4: {"i": "l", "I": "L"}}.get(_size, {}).get(_fmt, _fmt)
_FORMAT_CODES = {}
for _code, _fmt in _TYPED_FORMATS.items():
    _FORMAT_CODES.setdefault(_fmt, _code)
for _fmt in ("l", "L"):
    _size = array.array(_fmt).itemsize
    _FORMAT_CODES.setdefault(_fmt, {("l", 4): 5, ("L", 4): 6, ("l", 8): 9, ("L", 8): 10}[(_fmt, _size)])
# numpy dtype (kind, itemsize) -> msgpackr's code, for arrays returned by tasks.
_NUMPY_CODES = {("i", 1): 0, ("u", 1): 1, ("i", 2): 3, ("u", 2): 4, ("i", 4): 5, ("u", 4): 6, ("f", 4): 7, ("f", 8): 8, ("i", 8): 9, ("u", 8): 10}
_BIG_ENDIAN = sys.byteorder == "big"
_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)

# JS numbers that msgpackr writes as integers: the 32-bit ones. A numeric list packed as a Float64Array
# gives its integral values back as ints in this range, as they would have come unpacked.
_INT_LO = -2147483648
_INT_HI = 4294967295
# Lists at least this long whose elements are all floats or 32-bit ints travel as one Float64Array.
NUMERIC_MIN = 16


class NotEncodable(TypeError):
    pass


def _typed_array(data):
    code = data[0]
    if code in (16, 17):  # ArrayBuffer, DataView
        return bytes(data[1:])
    fmt = _TYPED_FORMATS.get(code)
    if fmt is None:
        raise ValueError("unknown typed array code %d" % code)
    a = array.array(fmt)
    a.frombytes(bytes(data[1:]))
    if _BIG_ENDIAN and a.itemsize > 1:
        a.byteswap()
    return a


def _bigint(data):
    return int.from_bytes(bytes(data), "big", signed=True)


def _bigint_ext(v):
    return bytes(v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True))


def _timestamp(data):
    n = len(data)
    if n == 4:
        sec, nsec = struct.unpack(">I", data)[0], 0
    elif n == 8:
        x = struct.unpack(">Q", data)[0]
        sec, nsec = x & 0x3FFFFFFFF, x >> 34
    elif n == 12:
        nsec, sec = struct.unpack(">Iq", data)
    else:
        return None  # msgpackr's invalid Date
    return _EPOCH + _dt.timedelta(seconds=sec, microseconds=nsec // 1000)


def _timestamp_parts(d):
    if d.tzinfo is None:
        d = d.astimezone()  # a naive datetime is local time, as datetime.timestamp() takes it
    delta = d - _EPOCH
    sec = delta.days * 86400 + delta.seconds
    return sec, delta.microseconds * 1000


def _typed_ext(code, raw):
    return bytes((code,)) + raw


def _array_bytes(a):
    if _BIG_ENDIAN and a.itemsize > 1:
        a = array.array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _numpy_ext(o):
    """A 1-D numeric numpy array as msgpackr's typed array (a Float64Array for float64); others as lists."""
    dt = o.dtype
    code = _NUMPY_CODES.get((dt.kind, dt.itemsize))
    if code is None or o.ndim != 1:
        return None
    if dt.byteorder == ">" or (dt.byteorder == "=" and _BIG_ENDIAN):
        o = o.astype(dt.newbyteorder("<"))
    return _typed_ext(code, o.tobytes())


def _set_value(items):
    try:
        return set(items)
    except TypeError:  # unhashable elements: a list, as JS arrays are
        return items


def _regexp_value(parts):
    import re

    flags = 0
    for ch in parts[1] if len(parts) > 1 else "":
        flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}.get(ch, 0)
    try:
        return re.compile(parts[0], flags)
    except re.error:
        return parts[0]


def _error_value(parts):
    return {"name": parts[0], "message": parts[1] if len(parts) > 1 else ""}


def unpack_numeric_list(a):
    """
    A chunk's items that travelled as one Float64Array: back to a list, 32-bit integral values as ints
    (as msgpackr would have written them one by one). The agent sends Python slots such lists as plain
    arrays already; this is for anything else that packs them.
    """
    floats = a.tolist()
    try:
        ints = list(map(int, floats))
    except (ValueError, OverflowError):  # NaN or an infinity among them
        ints = None
    if ints is not None and ints == floats and (not ints or (min(ints) >= _INT_LO and max(ints) <= _INT_HI)):
        return ints
    return [int(x) if (x.is_integer() and _INT_LO <= x <= _INT_HI) else x for x in floats]


_NUMBER_TYPES = frozenset((int, float))


class Int32Values(bytes):
    """
    A chunk's results that are all 32-bit signed ints, as msgpackr's Int32Array: the cheapest list of
    numbers to make here (array('i') checks the range in C). The agent widens it to the Float64Array
    the coordinator reads (python-slot.ts), so nothing else ever sees it.
    """


_INT_ONLY = frozenset((int,))
_INT32_FORMAT = _TYPED_FORMATS[5]


def _is_numeric_list(values, types=None):
    if len(values) < NUMERIC_MIN:
        return False
    if types is None:
        types = set(map(type, values))
    if not types <= _NUMBER_TYPES:
        return False
    if int not in types:
        return True
    # min and max run in C: when every value is within 32 bits, so are the ints (the usual case).
    if min(values) >= _INT_LO and max(values) <= _INT_HI:
        return True
    if float in types:
        # Floats beyond 32 bits (or NaN) are fine as floats: only the ints need checking, one by one.
        return all(type(v) is float or _INT_LO <= v <= _INT_HI for v in values)
    return False


def _numeric_ext_bytes(values, code=8, fmt="d"):
    raw = _array_bytes(array.array(fmt, values))
    n = len(raw) + 1
    if n < 0x100:
        head = struct.pack(">BBBB", 0xC7, n, EXT_TYPED, code)
    elif n < 0x10000:
        head = struct.pack(">BHBB", 0xC8, n, EXT_TYPED, code)
    else:
        head = struct.pack(">BIBB", 0xC9, n, EXT_TYPED, code)
    return head + raw


# ------------------------------------------------------------------------------------ pure Python

_s_b = struct.Struct(">b").unpack_from
_s_h = struct.Struct(">h").unpack_from
_s_H = struct.Struct(">H").unpack_from
_s_i = struct.Struct(">i").unpack_from
_s_I = struct.Struct(">I").unpack_from
_s_q = struct.Struct(">q").unpack_from
_s_Q = struct.Struct(">Q").unpack_from
_s_f = struct.Struct(">f").unpack_from
_s_d = struct.Struct(">d").unpack_from
# msgpack's fixed-size numbers: type byte → (reader, size).
_NUMBERS = {
    0xCA: (_s_f, 4),
    0xCB: (_s_d, 8),
    0xCD: (_s_H, 2),
    0xCE: (_s_I, 4),
    0xCF: (_s_Q, 8),
    0xD0: (_s_b, 1),
    0xD1: (_s_h, 2),
    0xD2: (_s_i, 4),
    0xD3: (_s_q, 8),
}
_p_d = struct.Struct(">Bd").pack
_p_B = struct.Struct(">BB").pack
_p_H = struct.Struct(">BH").pack
_p_I = struct.Struct(">BI").pack
_p_Q = struct.Struct(">BQ").pack
_p_b = struct.Struct(">Bb").pack
_p_h = struct.Struct(">Bh").pack
_p_i = struct.Struct(">Bi").pack
_p_q = struct.Struct(">Bq").pack


class _Prefixed(Exception):
    """msgpackr's Set, Error and RegExp: an extension followed by a value, which only the pure-Python decoder reads."""


def _decode_ext(code, data, d, i):
    """An extension's value, and where the next value starts (the prefix extensions read one more)."""
    if code == EXT_TYPED:
        return _typed_array(data), i
    if code == EXT_UNDEFINED:
        return None, i
    if code == EXT_BIGINT:
        return _bigint(data), i
    if code == EXT_TIMESTAMP:
        return _timestamp(bytes(data)), i
    if code == EXT_SET:
        v, i = _dec(d, i)
        return _set_value(v), i
    if code == EXT_ERROR:
        v, i = _dec(d, i)
        return _error_value(v), i
    if code == EXT_REGEXP:
        v, i = _dec(d, i)
        return _regexp_value(v), i
    return {"extType": code, "data": bytes(data)}, i


def _dec(d, i):
    b = d[i]
    i += 1
    if b <= 0x7F:
        return b, i
    if b >= 0xE0:
        return b - 0x100, i
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return d[i : i + n].decode("utf-8", "surrogatepass"), i + n
    if 0x90 <= b <= 0x9F:
        n = b & 0x0F
        out = [None] * n
        for k in range(n):
            out[k], i = _dec(d, i)
        return out, i
    if 0x80 <= b <= 0x8F:
        return _dec_map(d, i, b & 0x0F)
    if b == 0xC0:
        return None, i
    if b == 0xC2:
        return False, i
    if b == 0xC3:
        return True, i
    if b == 0xCC:
        return d[i], i + 1
    num = _NUMBERS.get(b)
    if num is not None:
        return num[0](d, i)[0], i + num[1]
    if b in (0xD9, 0xDA, 0xDB):
        if b == 0xD9:
            n, i = d[i], i + 1
        elif b == 0xDA:
            n, i = _s_H(d, i)[0], i + 2
        else:
            n, i = _s_I(d, i)[0], i + 4
        return d[i : i + n].decode("utf-8", "surrogatepass"), i + n
    if b in (0xC4, 0xC5, 0xC6):
        if b == 0xC4:
            n, i = d[i], i + 1
        elif b == 0xC5:
            n, i = _s_H(d, i)[0], i + 2
        else:
            n, i = _s_I(d, i)[0], i + 4
        return bytes(d[i : i + n]), i + n
    if b in (0xDC, 0xDD):
        if b == 0xDC:
            n, i = _s_H(d, i)[0], i + 2
        else:
            n, i = _s_I(d, i)[0], i + 4
        out = [None] * n
        for k in range(n):
            out[k], i = _dec(d, i)
        return out, i
    if b in (0xDE, 0xDF):
        if b == 0xDE:
            n, i = _s_H(d, i)[0], i + 2
        else:
            n, i = _s_I(d, i)[0], i + 4
        return _dec_map(d, i, n)
    if 0xD4 <= b <= 0xD8:
        n = (1, 2, 4, 8, 16)[b - 0xD4]
        code = _s_b(d, i)[0]
        i += 1
        return _decode_ext(code, d[i : i + n], d, i + n)
    if b in (0xC7, 0xC8, 0xC9):
        if b == 0xC7:
            n, i = d[i], i + 1
        elif b == 0xC8:
            n, i = _s_H(d, i)[0], i + 2
        else:
            n, i = _s_I(d, i)[0], i + 4
        code = _s_b(d, i)[0]
        i += 1
        return _decode_ext(code, d[i : i + n], d, i + n)
    raise ValueError("msgpack: byte 0x%02x at %d is not a value" % (b, i - 1))


def _dec_map(d, i, n):
    out = {}
    for _ in range(n):
        k, i = _dec(d, i)
        if type(k) is list:
            k = tuple(k)
        out[k], i = _dec(d, i)
    return out, i


def builtin_decode(data):
    d = memoryview(data) if not isinstance(data, (bytes, bytearray)) else data
    v, i = _dec(d, 0)
    if i != len(d):
        raise ValueError("msgpack: %d bytes left after the value" % (len(d) - i))
    return v


def _enc_int(v, out):
    if 0 <= v:
        if v < 0x80:
            out.append(v)
        elif v < 0x100:
            out += _p_B(0xCC, v)
        elif v < 0x10000:
            out += _p_H(0xCD, v)
        elif v < 0x100000000:
            out += _p_I(0xCE, v)
        elif v < 0x10000000000000000:
            out += _p_Q(0xCF, v)
        else:
            _enc_ext(EXT_BIGINT, _bigint_ext(v), out)
    elif v >= -32:
        out.append(v + 0x100)
    elif v >= -0x80:
        out += _p_b(0xD0, v)
    elif v >= -0x8000:
        out += _p_h(0xD1, v)
    elif v >= -0x80000000:
        out += _p_i(0xD2, v)
    elif v >= -0x8000000000000000:
        out += _p_q(0xD3, v)
    else:
        _enc_ext(EXT_BIGINT, _bigint_ext(v), out)


def _enc_ext(code, data, out):
    n = len(data)
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}.get(n)
    if fixed is not None:
        out.append(fixed)
    elif n < 0x100:
        out += _p_B(0xC7, n)
    elif n < 0x10000:
        out += _p_H(0xC8, n)
    else:
        out += _p_I(0xC9, n)
    out.append(code & 0xFF)
    out += data


def _enc_str(v, out):
    b = v.encode("utf-8", "surrogatepass")
    n = len(b)
    if n < 32:
        out.append(0xA0 | n)
    elif n < 0x100:
        out += _p_B(0xD9, n)
    elif n < 0x10000:
        out += _p_H(0xDA, n)
    else:
        out += _p_I(0xDB, n)
    out += b


def _enc_bin(b, out):
    n = len(b)
    if n < 0x100:
        out += _p_B(0xC4, n)
    elif n < 0x10000:
        out += _p_H(0xC5, n)
    else:
        out += _p_I(0xC6, n)
    out += b


def _enc(v, out, depth=0):
    t = type(v)
    if t is int:
        if 0 <= v < 0x80:
            out.append(v)
        else:
            _enc_int(v, out)
    elif t is str:
        _enc_str(v, out)
    elif t is float:
        out += _p_d(0xCB, v)
    elif v is None:
        out.append(0xC0)
    elif t is bool:
        out.append(0xC3 if v else 0xC2)
    elif t is list or t is tuple:
        if depth > 512:
            raise NotEncodable("nested more than 512 levels deep (a circular structure?)")
        n = len(v)
        if n < 16:
            out.append(0x90 | n)
        elif n < 0x10000:
            out += _p_H(0xDC, n)
        else:
            out += _p_I(0xDD, n)
        for x in v:
            _enc(x, out, depth + 1)
    elif t is dict:
        if depth > 512:
            raise NotEncodable("nested more than 512 levels deep (a circular structure?)")
        n = len(v)
        if n < 16:
            out.append(0x80 | n)
        elif n < 0x10000:
            out += _p_H(0xDE, n)
        else:
            out += _p_I(0xDF, n)
        for k, x in v.items():
            _enc(k, out, depth + 1)
            _enc(x, out, depth + 1)
    elif t is bytes or t is bytearray or t is memoryview:
        _enc_bin(v if t is not memoryview else v.tobytes(), out)
    else:
        _enc_other(v, out, depth)


def _enc_other(v, out, depth):
    """Subclasses and the less common types, as the msgpack package's `default` hook maps them."""
    if isinstance(v, bool):
        out.append(0xC3 if v else 0xC2)
    elif isinstance(v, int):
        _enc_int(int(v), out)
    elif isinstance(v, float):
        out += _p_d(0xCB, float(v))
    elif isinstance(v, str):
        _enc_str(str(v), out)
    elif isinstance(v, (bytes, bytearray)):
        _enc_bin(bytes(v), out)
    else:
        x = convert(v)
        if isinstance(x, _Ext):
            _enc_ext(x.code, x.data, out)
        else:
            _enc(x, out, depth + 1)


class _Ext(object):
    __slots__ = ("code", "data")

    def __init__(self, code, data):
        self.code = code
        self.data = data


def convert(v):
    """What a value msgpack has no type for becomes: an _Ext, or a plain value to encode instead."""
    if isinstance(v, (list, tuple)):
        return list(v)
    if isinstance(v, dict):
        return dict(v)
    if isinstance(v, (set, frozenset)):
        return list(v)
    if isinstance(v, array.array):
        code = _FORMAT_CODES.get(v.typecode)
        return list(v) if code is None else _Ext(EXT_TYPED, _typed_ext(code, _array_bytes(v)))
    if isinstance(v, _dt.datetime):
        sec, nsec = _timestamp_parts(v)
        if nsec == 0 and 0 <= sec < 0x100000000:
            return _Ext(EXT_TIMESTAMP, struct.pack(">I", sec))
        if 0 <= sec < 0x400000000:
            return _Ext(EXT_TIMESTAMP, struct.pack(">Q", (nsec << 34) | sec))
        return _Ext(EXT_TIMESTAMP, struct.pack(">Iq", nsec, sec))
    if isinstance(v, memoryview):
        return v.tobytes()
    if type(v).__module__ == "numpy":
        if hasattr(v, "ndim") and hasattr(v, "dtype") and v.ndim > 0:
            e = _numpy_ext(v)
            return _Ext(EXT_TYPED, e) if e is not None else v.tolist()
        if hasattr(v, "item"):
            return v.item()
    raise NotEncodable("cannot encode a %s.%s" % (type(v).__module__, type(v).__qualname__))


def builtin_encode(v):
    out = bytearray()
    _enc(v, out)
    return bytes(out)


# ------------------------------------------------------------------------------------ the package


def _package_codec(msgpack):
    ExtType = msgpack.ExtType
    Timestamp = msgpack.Timestamp

    def ext_hook(code, data):
        if code == EXT_TYPED:
            return _typed_array(data)
        if code == EXT_UNDEFINED:
            return None
        if code == EXT_BIGINT:
            return _bigint(data)
        if code in (EXT_SET, EXT_ERROR, EXT_REGEXP):
            raise _Prefixed()
        return {"extType": code, "data": bytes(data)}

    unpackb = msgpack.unpackb

    def decode(data):
        try:
            return unpackb(data, raw=False, strict_map_key=False, ext_hook=ext_hook, timestamp=3)
        except _Prefixed:
            return builtin_decode(data)

    def default(v):
        if isinstance(v, int) and not isinstance(v, bool):
            if -0x8000000000000000 <= v < 0x10000000000000000:
                return int(v)
            return ExtType(EXT_BIGINT, _bigint_ext(v))
        if isinstance(v, _dt.datetime):
            sec, nsec = _timestamp_parts(v)
            return Timestamp(sec, nsec)
        x = convert(v)
        if isinstance(x, _Ext):
            return ExtType(x.code, x.data)
        return x

    packer = msgpack.Packer(default=default, use_bin_type=True, datetime=False, autoreset=True)
    pack = packer.pack

    def encode(v):
        try:
            return pack(v)
        except ValueError as e:  # the package's words for too deep a structure
            raise NotEncodable(str(e))

    return decode, encode


# ------------------------------------------------------------------------------------ the choice


class Codec(object):
    """decode: msgpackr's bytes -> a value; encode: a value -> bytes msgpackr reads; name and version."""

    def __init__(self, name, version, decode, encode):
        self.name = name
        self.version = version
        self.decode = decode
        self.encode = encode

    def decode_items(self, data):
        """A chunk's items: a list, an Int32Array of ints (the agent sends lists of 32-bit ints so) or a Float64Array of numbers (see unpack_numeric_list)."""
        v = self.decode(data)
        if isinstance(v, array.array):
            return v.tolist() if v.typecode == _INT32_FORMAT else unpack_numeric_list(v)
        return v

    def encode_values(self, values):
        """
        A chunk's results: a list of numbers as one Float64Array, as the agent's encodeList does (one
        array copy here instead of a loop, and a copy for the coordinator to read instead of decoding
        every number).
        """
        if len(values) >= NUMERIC_MIN:
            types = set(map(type, values))
            if types == _INT_ONLY:
                try:
                    return Int32Values(_numeric_ext_bytes(values, 5, _INT32_FORMAT))
                except OverflowError:
                    pass  # beyond 32 bits signed: as below
            if _is_numeric_list(values, types):
                return _numeric_ext_bytes(values)
        return self.encode(values)


def choose(prefer=None):
    prefer = (prefer if prefer is not None else os.environ.get("SLURMPOOL_PY_CODEC", "auto")) or "auto"
    if prefer not in ("auto", "builtin", "msgpack"):
        raise ValueError("SLURMPOOL_PY_CODEC must be auto, builtin or msgpack, got %r" % prefer)
    if prefer != "builtin":
        try:
            import msgpack
        except ImportError as e:
            if prefer == "msgpack":
                raise ImportError("SLURMPOOL_PY_CODEC=msgpack, but this interpreter (%s) cannot import msgpack: %s" % (sys.executable, e))
        else:
            version = ".".join(str(x) for x in msgpack.version)
            if tuple(msgpack.version[:1]) >= (1,):
                decode, encode = _package_codec(msgpack)
                return Codec("msgpack", version, decode, encode)
            # Before 1.0 the package has no Timestamp type nor the options used here.
            if prefer == "msgpack":
                raise ImportError("SLURMPOOL_PY_CODEC=msgpack, but this interpreter's msgpack is %s; 1.0 or newer is needed" % version)
    return Codec("builtin", "", builtin_decode, builtin_encode)
