"""The runner's side of project spares: a load names the modules it imported, a preload imports
them before any function and says what its module-level code read of the environment."""
import os
import tempfile

from conftest import Runner


def test_a_load_names_the_modules_it_imported_and_not_its_own(runner):
    folder = tempfile.mkdtemp(prefix="clowdy-runner-")
    with open(os.path.join(folder, "private_mod.py"), "w") as f:
        f.write("X = 1\n")
    code = ("import sys\nsys.path.insert(0, %r)\nimport private_mod\nimport fractions\n"
            "import xml.dom.minidom\ndef handler(event):\n    return 1\n" % folder)
    r = Runner()
    try:
        loaded = r.load(code)
        assert loaded["type"] == "loaded", loaded
        modules = loaded["modules"]
        # Import order: a package before its submodules, a module before what it imported later
        assert "fractions" in modules and "decimal" in modules
        assert modules.index("xml") < modules.index("xml.dom") < modules.index("xml.dom.minidom")
        # Never the function's own module, nor one from a folder it chose
        assert "main" not in modules and "private_mod" not in modules
        assert len(modules) == len(set(modules))
    finally:
        r.close()


def test_a_load_that_imports_nothing_names_nothing(runner):
    r = runner()
    loaded = r.load("def handler(event):\n    return 1\n")
    assert loaded["type"] == "loaded" and "modules" not in loaded, loaded


def test_preload_imports_before_the_function(runner):
    r = runner()
    reply = r.call({"type": "preload", "modules": ["fractions", "no_such_module_x", "bad name", "tomllib"],
                    "env": {"PRELOAD_VAR": "a"}})
    assert reply["type"] == "preloaded", reply
    assert reply["failed"] == ["no_such_module_x"]
    assert reply["imported"] == 2
    # The function finds them imported, with the variables of its load
    code = ("import os, sys\nHAD = ['fractions' in sys.modules, 'tomllib' in sys.modules]\n"
            "def handler(event):\n    return [HAD, os.environ.get('PRELOAD_VAR')]\n")
    loaded = r.load(code, env={"PRELOAD_VAR": "a"})
    assert loaded["type"] == "loaded", loaded
    assert r.invoke()["output"] == [[True, True], "a"]


def test_what_module_level_code_read_and_set_in_the_environment_is_as_without_preload(runner):
    # zoneinfo reads PYTHONTZPATH with os.environ.get when it is imported
    r = runner()
    reply = r.call({"type": "preload", "modules": ["zoneinfo"], "env": {"PYTHONTZPATH": "/x"}})
    assert reply["type"] == "preloaded" and reply["failed"] == [], reply
    loaded = r.load("import os, zoneinfo\n"
                    "def handler(event):\n    return [list(zoneinfo.TZPATH), os.environ.get('PYTHONTZPATH')]\n",
                    env={"PYTHONTZPATH": "/x"})
    assert loaded["type"] == "loaded", loaded
    assert r.invoke()["output"] == [["/x"], "/x"]


def test_preload_after_load_or_malformed_is_an_error(runner):
    r = runner("def handler(event):\n    return 1\n")
    assert r.call({"type": "preload", "modules": ["fractions"], "env": {}})["type"] == "error"
    r = runner()
    assert r.call({"type": "preload", "modules": "fractions", "env": {}})["type"] == "error"
    r = runner()
    assert r.call({"type": "preload", "modules": [], "env": {"A": 5}})["type"] == "error"
    r = runner()
    assert r.call({"type": "preload", "modules": ["x"] * 2001, "env": {}})["type"] == "error"
