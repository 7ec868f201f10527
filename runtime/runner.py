"""Clowdy's Python runner: loads one function, then serves its invocations.

The runner lives inside a sandbox, started as `python3 -I -B runner.py` with fd 3 a
connected SOCK_STREAM socket to the host and fds 0/1/2 on /dev/null. It talks the
length-prefixed JSON protocol described in runtime/PROTOCOL.md on fd 3 and nowhere
else: `ready` at start-up, then one `load` (module-level code runs once, as on Lambda),
then any number of `invoke`s, one at a time, each answered by one `result`.

Logs. fds 1 and 2 are a pipe (dup2), so print(), C-level writes and subprocesses all
land in it. A drain thread empties the pipe as it fills and keeps at most log_limit
bytes per load or invocation, counting and dropping the rest, so a function printing
100 MB neither blocks nor grows. At the end of an invocation the main thread flushes
Python's buffers and, under the same lock, takes whatever is still in the pipe itself:
every byte the handler wrote before returning is then in its logs, with no marker and
no hand-off to the thread on the hot path. Output written between invocations (by a
background thread or process) is dropped.

The protocol fd is close-on-exec and never behind sys.stdout, so user code cannot
write frames by accident. A function that deliberately closes fd 3 or writes garbage
to it breaks only its own environment: the host sees EOF or a bad frame and kills it.
If user code forks and the child returns into the runner, the child exits at once
instead of answering. Nothing the function does (exceptions, SystemExit, results that
are not JSON) stops the loop; only os._exit, a signal or a broken fd 3 ends it.

The hot path (read frame, json, call, flush, drain, json, write) has no imports, no
thread creation and no per-call allocation beyond the messages themselves.
"""

import _thread
import fcntl
import json
import os
import select
import sys
import time

PROTOCOL_FD = 3                         # the socket to the host
DATABASE_DIR = "/opt/database"          # the project's SQLite database, when it has one
MAX_FRAME = 16 * 1024 * 1024            # largest frame either side sends (load may change it)
LOG_LIMIT = 64 * 1024                   # log bytes kept per load or invocation (load may change it)
TEXT_LIMIT = 64 * 1024                  # cap on an error message or a traceback
PIPE_SIZE = 1024 * 1024                 # asked-for capacity of the log pipe
READ_BUFFER_SIZE = 64 * 1024            # bytes taken from the log pipe per read
ENCODE_RECURSION_LIMIT = 1000           # while a result is encoded: it nests under the host's 1000 levels
MAX_VALUES = 1024 * 1024                # JSON values a frame may hold (the host's PROTO_MAX_VALUES)
FILENAME = "main.py"                    # the user's module file name in tracebacks
LAYER_DIR = "/opt/layer"                # pip packages mounted by the host, when present
DEFAULT_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}

os_read = os.read
os_readv = os.readv
os_write = os.write
monotonic = time.monotonic
perf_counter_ns = time.perf_counter_ns

RUNNER_FILE = sys._getframe().f_code.co_filename


async def _probe():
    pass


_probe_coroutine = _probe()
CoroutineType = type(_probe_coroutine)
ModuleType = type(sys)
_probe_coroutine.close()
del _probe_coroutine


class ProtocolError(Exception):
    """The host sent something this runner cannot act on."""


class Context:
    """The second argument of handler(event, context), as on AWS Lambda."""

    __slots__ = ("function_name", "function_version", "invocation_id",
                 "memory_limit_in_mb", "_deadline")

    def __init__(self, function_name, function_version, invocation_id,
                 memory_limit_in_mb, deadline):
        self.function_name = function_name             # name of the function
        self.function_version = function_version       # its version (as the host sent it)
        self.invocation_id = invocation_id             # id of this invocation
        self.memory_limit_in_mb = memory_limit_in_mb   # memory limit of the environment
        self._deadline = deadline                       # time.monotonic() when the host kills it

    @property
    def aws_request_id(self):
        return self.invocation_id

    @property
    def memory_limit_mb(self):
        return self.memory_limit_in_mb

    def get_remaining_time_in_millis(self):
        left = self._deadline - monotonic()
        return int(left * 1000) if left > 0 else 0

    def __repr__(self):
        return ("<Context function_name=%r function_version=%r invocation_id=%r>"
                % (self.function_name, self.function_version, self.invocation_id))


# ---------------------------------------------------------------------------
# Log capture: a pipe over fds 1 and 2, emptied by a thread and by s_log_end

LOG_LOCK = _thread.allocate_lock()      # held while reading the pipe and filing what was read
log_read_fd = -1                        # read end of the log pipe (non-blocking)
log_write_fd = -1                       # write end, kept open so the pipe never sees EOF
log_buffer = None                       # memoryview of one preallocated read buffer
log_pipe_reads = 17                     # reads that empty a full pipe (capacity / buffer, plus one)
log_ready_poller = None                 # the main thread's poll object for log_read_fd
log_capturing = False                   # True during a load or an invocation
log_parts = []                          # chunks kept for the current capture
log_size = 0                            # bytes in log_parts
log_dropped = 0                         # bytes read and dropped over the limit
log_limit = LOG_LIMIT                   # per-capture limit


def s_log_file(size):
    """Files size bytes from log_buffer; call with LOG_LOCK held."""
    global log_size, log_dropped
    if not log_capturing:
        return
    room = log_limit - log_size
    if room >= size:
        log_parts.append(bytes(log_buffer[:size]))
        log_size += size
    elif room > 0:
        log_parts.append(bytes(log_buffer[:room]))
        log_size += room
        log_dropped += size - room
    else:
        log_dropped += size


def s_log_drain_loop():
    """The drain thread: wait for output, read it under the lock, file it."""
    poller = select.poll()
    poller.register(log_read_fd, select.POLLIN)
    while True:
        try:
            events = poller.poll()
        except OSError:
            return
        if events and events[0][1] & (select.POLLERR | select.POLLNVAL):
            return
        with LOG_LOCK:
            try:
                size = os_readv(log_read_fd, (log_buffer,))
            except BlockingIOError:
                continue
            except OSError:
                return
            if size == 0:
                return
            s_log_file(size)


def s_log_setup():
    global log_read_fd, log_write_fd, log_buffer, log_ready_poller, log_pipe_reads
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (OSError, AttributeError):
        pass
    try:
        capacity = fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ)
    except (OSError, AttributeError):
        capacity = 65536
    os.set_blocking(read_fd, False)
    for stream in (sys.stdout, sys.stderr):
        #   Changing the encoding seeks, so do it while fds 1 and 2 are still /dev/null;
        #   line buffering keeps stdout and stderr lines in the order they were written.
        try:
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError, OSError):
            pass
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    log_read_fd, log_write_fd = read_fd, write_fd
    #   64 KiB, not the pipe's capacity: zeroing a 1 MiB buffer costs a cold start
    #   256 page faults; s_log_end reads as many times as the capacity needs.
    log_pipe_reads = max(capacity // READ_BUFFER_SIZE, 1) + 1
    log_buffer = memoryview(bytearray(READ_BUFFER_SIZE))
    log_ready_poller = select.poll()
    log_ready_poller.register(read_fd, select.POLLIN)
    _thread.start_new_thread(s_log_drain_loop, ())


def s_log_begin():
    global log_capturing, log_size, log_dropped
    with LOG_LOCK:
        log_parts.clear()
        log_size = 0
        log_dropped = 0
        log_capturing = True


def s_flush_stdio():
    out, err = sys.stdout, sys.stderr
    try:
        out.flush()
    except Exception:
        pass
    try:
        err.flush()
    except Exception:
        pass
    if out is not sys.__stdout__ or err is not sys.__stderr__:
        for stream in (sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:
                pass


def s_log_end():
    """Ends a capture; returns (text, truncated)."""
    global log_capturing
    s_flush_stdio()
    with LOG_LOCK:
        #   What the handler wrote is either filed already or still in the pipe,
        #   and log_pipe_reads reads take everything a pipe of this capacity can
        #   hold (a bound, so that a thread still writing cannot keep us here).
        for _ in range(log_pipe_reads):
            if not log_ready_poller.poll(0):
                break
            try:
                size = os_readv(log_read_fd, (log_buffer,))
            except OSError:
                size = 0
            if not size:
                break
            s_log_file(size)
        log_capturing = False
        if not log_parts and not log_dropped:
            return "", False
        data = b"".join(log_parts)
        dropped = log_dropped
        log_parts.clear()
    #   NUL bytes would end the logs early on the host (C strings): show them as U+FFFD
    text = data.decode("utf-8", "replace").replace("\x00", "\ufffd")
    if dropped:
        text += "\n[clowdy: logs truncated: %d bytes kept, %d bytes dropped]\n" % (len(data), dropped)
    return text, dropped > 0


# ---------------------------------------------------------------------------
# Framing on fd 3

read_pending = b""                      # bytes read from fd 3 beyond the last frame


def s_read_frame():
    """Returns the next frame's body as bytes; raises EOFError at end of stream."""
    global read_pending
    data = read_pending
    while len(data) < 4:
        chunk = os_read(PROTOCOL_FD, 65536)
        if not chunk:
            raise EOFError
        data += chunk
    size = int.from_bytes(data[:4], "big")
    if size > MAX_FRAME:
        raise ProtocolError("frame of %d bytes is over the limit of %d" % (size, MAX_FRAME))
    need = size + 4
    if len(data) < need:
        parts = [data]
        have = len(data)
        while have < need:
            chunk = os_read(PROTOCOL_FD, max(need - have, 65536))
            if not chunk:
                raise EOFError
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
    read_pending = data[need:]
    return data[4:need]


def s_write_frame(body):
    data = len(body).to_bytes(4, "big") + body
    done = os_write(PROTOCOL_FD, data)
    if done < len(data):
        view = memoryview(data)
        while done < len(view):
            done += os_write(PROTOCOL_FD, view[done:])


def s_reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


class NotSerialisable(TypeError):
    """Raised by the encoder on a value JSON cannot carry."""


def s_encode_default(value):
    kind = type(value)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", None):
        name = "%s.%s" % (kind.__module__, name)
    raise NotSerialisable("object of type %s" % name)


DECODER = json.JSONDecoder(parse_constant=s_reject_constant)
DECODE = DECODER.decode
SCAN = DECODER.scan_once


def s_decode(body):
    """A frame body as a Python value; raises ValueError on anything but one JSON value."""
    text = body.decode("utf-8")
    try:
        value, end = SCAN(text, 0)      # the host sends compact JSON: one C call
        if end == len(text):
            return value
    except StopIteration:
        pass
    return DECODE(text)                 # whitespace around the value, or a proper error
ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                          default=s_encode_default).encode


def s_encode(message):
    """One message as a frame body; raises on a value JSON cannot carry or a body too big."""
    body = ENCODE(message).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise OverflowError("message of %d bytes is over the frame limit of %d bytes"
                            % (len(body), MAX_FRAME))
    return body


def s_value_count(value, limit):
    """The JSON values value is encoded as (a list or a dict is one, and so is each value in it),
    counting no further than limit + 1."""
    count, todo = 0, [value]
    while todo and count <= limit:
        item = todo.pop()
        count += 1
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
    return count


def s_check_values(body, output):
    """Raises OverflowError if a result's frame holds more JSON values than the host takes
    (each costs it a parsed node). A frame cannot hold more values than bytes, nor more than
    one after each ',' and '[' or '{' (strings included): only past both does it count."""
    if len(body) <= MAX_VALUES:
        return
    if body.count(b",") + body.count(b"[") + body.count(b"{") + 1 <= MAX_VALUES:
        return
    #   The reply around the output: {type, ok, output, logs, logs_truncated, duration_us}
    if s_value_count(output, MAX_VALUES) + 6 > MAX_VALUES:
        raise OverflowError("the result holds more than %d JSON values (lists, objects and the values "
                            "in them)" % (MAX_VALUES - 6))


def s_has_nul(text):
    """True if JSON text holds a \\u0000 escape (not an escaped backslash followed by u0000)."""
    index = text.find("\\u0000")
    while index != -1:
        start = index
        while start > 0 and text[start - 1] == "\\":
            start -= 1
        if (index - start) % 2 == 0:
            return True
        index = text.find("\\u0000", index + 1)
    return False


def s_send(message):
    s_write_frame(s_encode(message))


def s_send_reply(reply):
    """Sends a reply made of strings; if it is over the frame limit, cuts logs and texts."""
    try:
        body = s_encode(reply)
    except OverflowError:
        reply["logs"] = "[clowdy: logs dropped: the reply was over the frame limit]\n"
        reply["logs_truncated"] = True
        for key in ("error", "traceback"):
            if key in reply:
                reply[key] = reply[key][:1000]
        body = s_encode(reply)
    s_write_frame(body)


def s_clean(text, limit=TEXT_LIMIT):
    """Text safe to send: valid UTF-8 and at most about limit characters."""
    if not isinstance(text, str):
        text = s_safe_str(text)
    if len(text) > limit:
        text = text[:limit] + "\n[clowdy: truncated, %d characters dropped]" % (len(text) - limit)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def s_safe_str(value):
    try:
        return str(value)
    except BaseException:
        return "<unprintable %s>" % type(value).__name__


# ---------------------------------------------------------------------------
# Errors and tracebacks (imports happen on the first error, not on the hot path)

def s_drop_frames(summary, drop):
    summary[:] = [frame for frame in summary if frame.filename not in drop]


def s_format_traceback(error):
    """The traceback of error with the runner's own frames (and asyncio's) left out."""
    try:
        import linecache
        import traceback
        if function_code is not None:
            linecache.cache[FILENAME] = (len(function_code), None,
                                         function_code.splitlines(True), FILENAME)
        drop = {RUNNER_FILE}
        if handler_is_async:
            import asyncio
            base = os.path.dirname(asyncio.__file__)
            drop.update(os.path.join(base, name) for name in os.listdir(base))
        top = traceback.TracebackException(type(error), error, error.__traceback__,
                                           compact=True)
        seen = set()
        todo = [top]
        while todo:
            item = todo.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            s_drop_frames(item.stack, drop)
            for child in (item.__cause__, item.__context__):
                if child is not None:
                    todo.append(child)
            todo.extend(getattr(item, "exceptions", None) or ())
        return "".join(top.format())
    except BaseException:
        return "%s: %s\n" % (type(error).__name__, s_safe_str(error))


def s_error_fields(error):
    """error, error_type and traceback for an exception the function raised."""
    if isinstance(error, SystemExit):
        message = "the function called sys.exit(%s)" % s_safe_str(
            repr(error.code) if error.code is not None else "")
    else:
        message = s_safe_str(error)
    return {
        "error": s_clean(message),
        "error_type": s_clean(type(error).__name__, 200),
        "traceback": s_clean(s_format_traceback(error)),
    }


# ---------------------------------------------------------------------------
# The function

function_name = None                    # set by load
function_version = None                 # set by load
function_code = None                    # its source, for tracebacks
memory_limit_mb = 0                     # from load, for the context
timeout_ms = 30000                      # from load, used when invoke has none
handler = None                          # the callable, once loaded
handler_arity = 1                       # 1: handler(input), 2: handler(event, context)
handler_is_async = False                # an async def handler runs on event_loop
event_loop = None                       # persistent loop for async handlers
forked_child = False                    # True in a child forked by user code
ZYGOTE_CHILD = False                    # True when forked from clowdy-zygote (runtime/zygote.c sets it)


def s_mark_forked_child():
    global forked_child
    forked_child = True


class LoadError(Exception):
    """A function that compiled and ran but has no usable handler."""

    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def s_handler_arity(target):
    """1 or 2 (arguments the handler is called with), or raises LoadError."""
    code, defaults, bound = None, None, 0
    inner = target
    if not hasattr(inner, "__code__") and hasattr(inner, "__func__"):
        inner, bound = inner.__func__, 1
    if not hasattr(inner, "__code__") and not isinstance(inner, type):
        call = getattr(type(inner), "__call__", None)
        if hasattr(call, "__code__"):
            inner, bound = call, 1
    code = getattr(inner, "__code__", None)
    if code is not None and hasattr(code, "co_argcount"):
        defaults = getattr(inner, "__defaults__", None) or ()
        positional = code.co_argcount - bound
        required = positional - len(defaults)
        varargs = bool(code.co_flags & 0x04)
    else:
        import inspect
        try:
            parameters = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):
            return 2
        kinds = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        positional = len(kinds)
        required = len([p for p in kinds if p.default is p.empty])
        varargs = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    if required > 2:
        raise LoadError("HandlerSignatureError",
                        "handler takes %d required arguments; it must be handler(event) "
                        "or handler(event, context)" % required)
    if positional >= 2 or varargs:
        return 2
    if positional == 1:
        return 1
    raise LoadError("HandlerSignatureError",
                    "handler takes no arguments; it must be handler(event) "
                    "or handler(event, context)")


def s_set_environ(env):
    wanted = dict(DEFAULT_ENV)
    wanted.update(env)
    os.environ.clear()
    os.environ.update(wanted)


def s_check_env(message, what):
    """The message's environment variables (an object of strings), or raises ProtocolError."""
    env = message.get("env") or {}
    if not isinstance(env, dict):
        raise ProtocolError("%s: env must be an object" % what)
    for key, value in env.items():
        if (not isinstance(value, str) or not key or "=" in key or "\0" in key
                or "\0" in value):
            raise ProtocolError("%s: env %r must be a string without NUL, its name without '='"
                                % (what, key[:100]))
    return env


def s_check_load(message):
    """Validates a load message; returns its fields or raises ProtocolError."""
    global MAX_FRAME, log_limit
    code = message.get("code")
    if not isinstance(code, str):
        raise ProtocolError("load: code must be a string")
    name = message.get("function_name", "")
    if not isinstance(name, str):
        raise ProtocolError("load: function_name must be a string")
    env = s_check_env(message, "load")
    entry = message.get("handler", "handler")
    if not isinstance(entry, str) or not entry.isidentifier():
        raise ProtocolError("load: handler must be a Python identifier")
    for field in ("memory_limit_mb", "timeout_seconds", "log_limit_bytes", "max_frame_bytes",
                  "file_limit_mb"):
        value = message.get(field)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or value < 0):
            raise ProtocolError("load: %s must be a non-negative number" % field)
    if message.get("log_limit_bytes") is not None:
        log_limit = int(message["log_limit_bytes"])
    if message.get("max_frame_bytes"):
        MAX_FRAME = max(int(message["max_frame_bytes"]), 65536)
    return code, name, env, entry


def s_limit_files(limit_mb):
    """Caps the project's SQLite database (file_limit_mb) in two layers.

    1. Every sqlite3 connection the function opens on a file under /opt/database gets
       PRAGMA max_page_count for the cap: a write past it fails with SQLite's own clear
       "database or disk is full" (sqlite3.OperationalError) and the database stays usable.
    2. A backstop the function cannot lift, for one that raises max_page_count or writes
       other files there: RLIMIT_FSIZE (soft and hard) at twice the cap plus room for the
       WAL (SQLite checkpoints it at about 4 MB), with SIGXFSZ ignored so such a write fails
       with EFBIG ("disk I/O error") rather than killing the process."""
    import resource
    import signal
    import sqlite3
    limit = limit_mb * 1024 * 1024
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        backstop = 2 * limit + 8 * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (backstop, backstop))
    except (OSError, ValueError) as error:
        print("clowdy: could not cap file sizes: %s" % error, file=sys.stderr)
    original = sqlite3.connect

    def connect(database, *args, **kwargs):
        connection = original(database, *args, **kwargs)
        name = os.fsdecode(database) if isinstance(database, (str, bytes, os.PathLike)) else ""
        if name.startswith("file:"):
            name = name[5:].split("?", 1)[0]
        if os.path.abspath(name).startswith(DATABASE_DIR + "/"):
            try:
                page_size = connection.execute("PRAGMA page_size").fetchone()[0]
                connection.execute("PRAGMA max_page_count = %d" % max(limit // page_size, 1))
            except sqlite3.Error:
                pass
        return connection

    connect.__doc__ = original.__doc__
    sqlite3.connect = connect



def s_add_layer():
    """Put the project's dependency layer on sys.path, after the runner's
    own dir and the standard library (a layer's json.py or os.py must not
    replace theirs) but before the interpreter's site/dist-packages, so a
    version the project pinned wins over one the host happens to have."""
    if not os.path.isdir(LAYER_DIR) or LAYER_DIR in sys.path:
        return
    for index, entry in enumerate(sys.path):
        if entry.endswith(("site-packages", "dist-packages")):
            sys.path.insert(index, LAYER_DIR)
            return
    sys.path.append(LAYER_DIR)

def s_load(message):
    global function_name, function_version, function_code, memory_limit_mb, timeout_ms
    global handler, handler_arity, handler_is_async, event_loop
    if function_code is not None:
        s_send({"type": "load_error", "error": "a function is already loaded",
                "error_type": "ProtocolError", "traceback": "", "logs": "",
                "logs_truncated": False})
        return
    try:
        code, name, env, entry = s_check_load(message)
    except ProtocolError as error:
        s_send({"type": "load_error", "error": s_clean(str(error)),
                "error_type": "ProtocolError", "traceback": "", "logs": "",
                "logs_truncated": False})
        return
    function_name = name
    function_version = message.get("version")
    function_code = code
    memory_limit_mb = int(message.get("memory_limit_mb") or 0)
    timeout_ms = int((message.get("timeout_seconds") or 30) * 1000)
    s_set_environ(env)
    if preload_environ is not None:
        #   Preloaded with these same variables: what module-level code set is kept, as it
        #   would be had it run now (its file cap, if any, is set already)
        os.environ.clear()
        os.environ.update(preload_environ)
    elif message.get("file_limit_mb"):
        s_limit_files(int(message["file_limit_mb"]))
    s_add_layer()
    sys.argv[:] = [FILENAME]

    module = type(sys)("main")
    module.__file__ = FILENAME
    reply = None
    #   The last module before the load, not a copy of sys.modules: a copy would write the
    #   reference count of every module name, and in a zygote's child each such write copies
    #   a page (s_module_names walks back from the end to this one)
    last = next(reversed(sys.modules), None)
    s_log_begin()
    started = perf_counter_ns()
    try:
        sys.modules["main"] = module
        compiled = compile(code, FILENAME, "exec", dont_inherit=True)
        exec(compiled, module.__dict__)
        if not hasattr(module, entry):
            raise LoadError("HandlerNotFound", "%s defines no function named %s"
                            % (FILENAME, entry))
        target = getattr(module, entry)
        if not callable(target):
            raise LoadError("HandlerNotCallable", "%s.%s is a %s, not a function"
                            % (FILENAME[:-3], entry, type(target).__name__))
        arity = s_handler_arity(target)
        is_async = bool(getattr(getattr(target, "__code__", None), "co_flags", 0) & 0x80)
        if is_async:
            import asyncio
            event_loop = asyncio.new_event_loop()
    except LoadError as error:
        reply = {"type": "load_error", "error": s_clean(str(error)),
                 "error_type": error.error_type, "traceback": ""}
    except BaseException as error:
        reply = {"type": "load_error"}
        reply.update(s_error_fields(error))
    duration_us = (perf_counter_ns() - started) // 1000
    if forked_child:
        os._exit(0)
    logs, truncated = s_log_end()
    if reply is None:
        handler, handler_arity, handler_is_async = target, arity, is_async
        reply = {"type": "loaded", "duration_us": duration_us}
        modules = s_module_names(last)
        if modules:
            reply["modules"] = modules      # what the host may preload for this project
    else:
        sys.modules.pop("main", None)
    reply["logs"] = logs
    reply["logs_truncated"] = truncated
    s_send_reply(reply)


def s_invoke(message):
    invocation_id = message.get("invocation_id", "")
    if handler is None:
        s_send({"type": "result", "ok": False, "error": "no function is loaded",
                "error_type": "ProtocolError", "traceback": "", "logs": "",
                "logs_truncated": False, "duration_us": 0})
        return
    limit_ms = message.get("timeout_ms")
    if not isinstance(limit_ms, (int, float)):
        limit_ms = timeout_ms
    context = Context(function_name, function_version, invocation_id, memory_limit_mb,
                      monotonic() + limit_ms / 1000)
    event = message.get("input")
    reply = None
    s_log_begin()
    started = perf_counter_ns()
    try:
        if handler_arity == 2:
            output = handler(event, context)
        else:
            output = handler(event)
        if type(output) is CoroutineType:
            output = event_loop.run_until_complete(output)
    except BaseException as error:
        reply = {"type": "result", "ok": False}
        reply.update(s_error_fields(error))
        output = None
    duration_us = (perf_counter_ns() - started) // 1000
    if forked_child:
        os._exit(0)
    logs, truncated = s_log_end()
    if reply is None:
        reply = {"type": "result", "ok": True, "output": output, "logs": logs,
                 "logs_truncated": truncated, "duration_us": duration_us}
        #   The host's JSON parser (cJSON) stops at 1000 levels of nesting. Python's encoder
        #   stops a little earlier at the default recursion limit, with an error that can
        #   name the cause; a function that raised the limit would otherwise make the
        #   host read a frame it cannot parse.
        user_limit = sys.getrecursionlimit()
        if user_limit != ENCODE_RECURSION_LIMIT:
            sys.setrecursionlimit(ENCODE_RECURSION_LIMIT)
        try:
            body = s_encode(reply)
            s_check_values(body, output)
            #   The host's JSON parser (cJSON) ends strings at U+0000: say so rather than cut them
            if b"\\u0000" in body and s_has_nul(ENCODE(output)):
                raise NotSerialisable("a string holds the NUL character (U+0000), which results cannot carry")
        except OverflowError as error:
            body = None
            reply = {"type": "result", "ok": False, "error": s_clean(s_safe_str(error)),
                     "error_type": "ResultTooLarge", "traceback": ""}
        except BaseException as error:
            #   TypeError, ValueError (NaN, circular), RecursionError, UnicodeEncodeError,
            #   or anything a mapping subclass's items() raised while being encoded.
            body = None
            detail = s_safe_str(error)
            if isinstance(error, UnicodeError):
                detail = "a string holds a lone surrogate (%s)" % detail
            elif "Circular reference" in detail:
                detail = "it refers to itself (circular reference)"
            elif "Out of range float" in detail:
                detail = "it holds NaN or Infinity, which JSON cannot carry"
            elif isinstance(error, RecursionError):
                detail = ("it is nested too deeply (lists and dicts inside each other more than "
                          "about %d levels deep)" % (ENCODE_RECURSION_LIMIT - 10))
            elif not isinstance(error, (NotSerialisable, TypeError, ValueError, RecursionError)):
                detail = "%s: %s" % (type(error).__name__, detail)
            reply = {"type": "result", "ok": False,
                     "error": s_clean("result is not JSON serialisable: " + detail),
                     "error_type": "ResultNotSerialisable", "traceback": ""}
        if user_limit != ENCODE_RECURSION_LIMIT:
            sys.setrecursionlimit(user_limit)
        if body is not None:
            s_write_frame(body)
            return
        output = None
    reply.update(logs=logs, logs_truncated=truncated, duration_us=duration_us)
    s_send_reply(reply)


# ---------------------------------------------------------------------------
# Preload: the modules a project's functions imported, imported before its next
# function arrives (actors/worker.c, "Project spares")

PRELOAD_MAX = 2000                      # names in one preload, and reported by one load
preload_environ = None                  # os.environ as module-level code left it in the preloads


def s_module_name_ok(name):
    """A dotted name of identifiers, as a preload may import."""
    return isinstance(name, str) and len(name) <= 200 and all(part.isidentifier() for part in name.split("."))


def s_module_names(last):
    """The modules a load imported (those after `last` in sys.modules, whose order is import
    order) that a preload may import again: the layer's and the interpreter's (/usr), never
    the function's own module or anything it wrote elsewhere (/tmp, the database dir). Never
    raises: a thread importing meanwhile, or an odd object in sys.modules, gives []."""
    try:
        added = []
        for name in reversed(sys.modules):
            if name == last or len(added) > 4 * PRELOAD_MAX:
                break
            added.append(name)
        names = []
        for name in reversed(added):
            module = sys.modules.get(name)
            if name == "main" or len(names) >= PRELOAD_MAX or type(module) is not ModuleType:
                continue
            origin = getattr(module.__dict__.get("__spec__"), "origin", None)
            if not isinstance(origin, str):
                continue
            if not (origin in ("built-in", "frozen") or origin.startswith("/usr/")
                    or origin.startswith(LAYER_DIR + "/")):
                continue
            if s_module_name_ok(name):
                names.append(name)
        return names
    except BaseException:
        return []


def s_preload(message):
    """Imports the named modules, as a load of this project's functions would: with the
    project's environment variables (env) and database file cap set as a load sets them. A
    module that fails to import is left out (a load imports it again itself). What
    module-level code set in os.environ is kept for the load (which sets the function's
    variables again: the host gives this environment only to a function with the same)."""
    global preload_environ
    names = message.get("modules")
    if function_code is not None or not isinstance(names, list) or len(names) > PRELOAD_MAX:
        s_send({"type": "error", "error": "preload: modules must be a list of at most %d names, "
                "before any load" % PRELOAD_MAX})
        return
    try:
        env = s_check_env(message, "preload")
        limit = message.get("file_limit_mb")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ProtocolError("preload: file_limit_mb must be a positive integer")
    except ProtocolError as error:
        s_send({"type": "error", "error": s_clean(str(error))})
        return
    s_set_environ(env)
    if limit and preload_environ is None:
        s_limit_files(limit)
    s_add_layer()
    sys.argv[:] = [FILENAME]
    imported, failed = 0, []
    s_log_begin()
    started = perf_counter_ns()
    import importlib
    for name in names:
        if not s_module_name_ok(name) or name in sys.modules:
            continue
        try:
            importlib.import_module(name)
            imported += 1
        except BaseException:
            failed.append(name)
    duration_us = (perf_counter_ns() - started) // 1000
    if forked_child:
        os._exit(0)
    s_log_end()                         # what module-level code printed is dropped
    preload_environ = dict(os.environ)
    s_send({"type": "preloaded", "imported": imported, "failed": failed[:100],
            "duration_us": duration_us})

def s_handle(body):
    try:
        message = s_decode(body)
    except (ValueError, RecursionError) as error:
        s_send({"type": "error", "error": s_clean("bad frame: %s" % error)})
        return
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "invoke":
        s_invoke(message)
    elif kind == "load":
        s_load(message)
    elif kind == "preload":
        s_preload(message)
    elif kind == "ping":
        s_send({"type": "pong"})
    else:
        s_send({"type": "error", "error": s_clean("unknown message type %r" % (kind,), 200)})


def s_warm_child():
    """In a child of the zygote, before ready: a throw-away function loaded and called through
    the real load and invoke (their replies go nowhere), so that the pages a load and a call
    write (the compiler's, the allocator's, json's, the logs', the reference counts of what they
    read) are copied from the zygote now, while this environment is being made, instead of
    during the first real load and call (each copy is a page fault, 20-30 us on a virtual
    machine). Then the runner is as it was: no function, the same modules."""
    global s_write_frame, function_name, function_version, function_code, memory_limit_mb
    global timeout_ms, handler, handler_arity, handler_is_async, event_loop
    write_frame = s_write_frame
    s_write_frame = len                 # takes the frame body, sends nothing
    try:
        s_handle(s_encode({"type": "load", "function_name": "warm", "version": 1, "env": {},
                           "code": "def handler(event, context=None):\n"
                                   "    context.get_remaining_time_in_millis()\n"
                                   "    return {'echo': event}\n",
                           "memory_limit_mb": 128, "timeout_seconds": 1}))
        s_handle(s_encode({"type": "invoke", "invocation_id": "warm",
                           "input": {"a": [1, 2.5, "x", None, True]}, "timeout_ms": 1000}))
    finally:
        s_write_frame = write_frame
        function_name = function_version = function_code = event_loop = handler = None
        memory_limit_mb, timeout_ms, handler_arity, handler_is_async = 0, 30000, 1, False
        sys.modules.pop("main", None)


def main():
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)
    try:
        os.set_inheritable(PROTOCOL_FD, False)
        os.set_blocking(PROTOCOL_FD, True)
    except OSError as error:
        sys.stderr.write("runner: fd %d is not usable: %s\n" % (PROTOCOL_FD, error))
        sys.exit(2)
    s_log_setup()
    #   The first compile() in a process costs about 0.8 ms; pay it before ready, not in load.
    compile("def _warm(a, b=1, *c, **d):\n    return [x for x in a if x]\n", "<warm-up>", "exec")
    if ZYGOTE_CHILD:
        s_warm_child()
    os.register_at_fork(after_in_child=s_mark_forked_child)
    try:
        s_send({"type": "ready", "pid": os.getpid(),
                "python": "%d.%d.%d" % sys.version_info[:3]})
        while True:
            body = s_read_frame()
            try:
                s_handle(body)
            except OSError:
                raise
            except Exception as error:
                s_send({"type": "error", "error": s_clean("runner: %s: %s"
                                                          % (type(error).__name__, error))})
    except EOFError:
        os._exit(0)
    except ProtocolError as error:
        try:
            s_send({"type": "error", "error": s_clean(str(error))})
        except BaseException:
            pass
        os._exit(1)
    except BaseException:
        os._exit(1)


if __name__ == "__main__":
    main()
