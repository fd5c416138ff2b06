"""What `import datadog_serverless` costs a function's cold start: the package imports none of the
heavy modules (the extension and the `inspect` its init imports, `dataclasses`, `logging`, `json`,
`typing`, `threading`, `re`) until a call needs them; and the value classes, no longer made by
`dataclasses`, still behave as the frozen dataclasses they were."""
from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
import textwrap
import typing

import pytest

from datadog_serverless import ServicesConfig, ServicesStats, ServiceStatus
from tests.py.services_util import REPO

HEAVY = {"datadog_serverless._core", "inspect", "dataclasses", "logging", "json", "typing", "threading", "re"}


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, cwd=REPO / "tests", env={"PATH": "/usr/bin:/bin"})


def test_import_loads_none_of_the_heavy_modules():
    child = run_child(f"""
        import sys
        before = set(sys.modules)
        from datadog_serverless import ServerlessServices, ServicesConfig, ServicesError, TRACE, Ports
        new = set(sys.modules) - before
        print(sorted(new & set({sorted(HEAVY)!r})))
        print("datadog_serverless.config" in new)
    """)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["[]", "True"]


def test_the_extension_and_version_load_on_first_use():
    child = run_child("""
        import sys
        import datadog_serverless
        assert "datadog_serverless._core" not in sys.modules
        cfg = datadog_serverless.ServicesConfig.defaults()
        assert "datadog_serverless._core" in sys.modules and cfg.dogstatsd_port == 8125
        print(datadog_serverless.__version__)
    """)
    assert child.returncode == 0, child.stderr
    version = child.stdout.strip()
    assert version.count(".") == 2 and f"VERSION {version}" in (REPO / "CMakeLists.txt").read_text()


def test_lines_below_warning_skip_logging_until_it_is_imported_and_warnings_still_show():
    # Nothing imported logging: the logger's level is the root's default (WARNING), so the info
    # lines would be dropped there anyway; the dry-run warning reaches logging's last resort.
    child = run_child("""
        import sys
        from datadog_serverless import ServerlessServices, ServicesConfig
        base = dict(dogstatsd_port=0, apm_receiver_port=0, log_level="info")
        url = "http://127.0.0.1:9"  # every intake on loopback: no CA lookup, nothing leaves the machine
        h = ServerlessServices(ServicesConfig(api_key="k" * 32, dd_url=url, apm_dd_url=url, apm_telemetry_dd_url=url,
                                              apm_profiling_dd_url=url + "/api/v2/profile", **base)).start()
        h.stop()
        print("logging" in sys.modules)
        h = ServerlessServices(ServicesConfig(**base)).start()
        h.stop()
        print("logging" in sys.modules)
    """)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["False", "True"]
    assert "DD_API_KEY is not set: nothing is sent" in child.stderr
    assert "listening" not in child.stderr  # info lines stay below the default WARNING


def test_config_is_still_a_frozen_keyword_only_dataclass():
    cfg = ServicesConfig(api_key="x", tags=["a:1"])
    assert dataclasses.is_dataclass(cfg) and dataclasses.is_dataclass(ServicesConfig)
    names = [f.name for f in dataclasses.fields(ServicesConfig)]
    assert names == list(ServicesConfig.__annotations__) and len(names) >= 50
    assert all(f.default is None and f.kw_only for f in dataclasses.fields(cfg))
    assert dataclasses.asdict(cfg) == {n: {"api_key": "x", "tags": ["a:1"]}.get(n) for n in names}
    other = dataclasses.replace(cfg, site="datadoghq.eu")
    assert (other.site, other.api_key, cfg.site) == ("datadoghq.eu", "x", None)
    assert repr(ServicesConfig(api_key="x")).startswith("ServicesConfig(api_key='x', site=None, dd_url=None, ")
    assert ServicesConfig(api_key="x") == ServicesConfig(api_key="x") != ServicesConfig(api_key="y")
    assert hash(ServicesConfig(api_key="x")) == hash(ServicesConfig(api_key="x"))
    assert ServicesConfig() != object() and ServicesConfig.__match_args__ == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.site = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del cfg.site  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^ServicesConfig.__init__\(\) takes 1 positional argument but 2 were given$"):
        ServicesConfig("x")  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^ServicesConfig.__init__\(\) got an unexpected keyword argument 'nope'$"):
        ServicesConfig(nope=1)  # type: ignore[call-arg]
    assert pickle.loads(pickle.dumps(cfg)) == cfg and copy.deepcopy(cfg) == cfg and copy.copy(cfg) == cfg


def test_status_and_stats_are_still_frozen_dataclasses():
    st = ServiceStatus("ready", "dogstatsd", None, 8125)
    assert st == ServiceStatus(type="ready", service="dogstatsd", port=8125)
    assert repr(st) == "ServiceStatus(type='ready', service='dogstatsd', message=None, port=8125)"
    assert ServiceStatus("stopped").service is None
    match st:
        case ServiceStatus("ready", service, _, port):
            assert (service, port) == ("dogstatsd", 8125)
        case _:
            pytest.fail("positional match failed")
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'type'$"):
        ServiceStatus()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="got multiple values for argument 'type'"):
        ServiceStatus("ready", type="error")  # type: ignore[misc]
    names = [f.name for f in dataclasses.fields(ServicesStats)]
    stats = ServicesStats(**dict.fromkeys(names, 0))
    assert dataclasses.asdict(stats) == dict.fromkeys(names, 0) and len(names) >= 35
    with pytest.raises(TypeError, match=r"missing 2 required positional arguments: 'dsd_packets' and 'dsd_bytes'$"):
        ServicesStats(**{n: 0 for n in names if n not in ("dsd_packets", "dsd_bytes")})
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.dsd_packets = 1  # type: ignore[misc]
    assert hash(st) == hash(ServiceStatus("ready", "dogstatsd", None, 8125))


def test_annotations_still_resolve_at_run_time():
    # typing.get_type_hints (pydantic, cattrs, ...) evaluates the field annotations in the module:
    # they use builtins and collections.abc only, nothing imported for type checkers alone.
    hints = {cls: typing.get_type_hints(cls) for cls in (ServicesConfig, ServiceStatus, ServicesStats)}
    assert list(hints[ServicesConfig]) == [f.name for f in dataclasses.fields(ServicesConfig)]
    assert hints[ServicesConfig]["dogstatsd_port"] == int | None
    assert hints[ServiceStatus]["service"] == str | None and hints[ServicesStats]["dsd_packets"] is int


def test_the_extension_does_not_import_inspect_and_its_code_objects_keep_their_flags():
    # Cython's limited-API module init imports `inspect` (12-23 ms) only to read the CO_* flags;
    # the build gives them at compile time instead (cmake/cython_co_flags.cmake). The flags must
    # still be right: they are what the code objects of the extension's functions carry.
    child = run_child("""
        import sys
        from datadog_serverless import _core, ServerlessServices, ServicesConfig
        h = ServerlessServices(ServicesConfig(dogstatsd_port=0, apm_receiver_port=0)).start()
        h.stop()
        print("inspect" in sys.modules)
        import inspect
        flags = {n: getattr(inspect, n) for n in ("CO_OPTIMIZED", "CO_NEWLOCALS", "CO_VARARGS", "CO_VARKEYWORDS")}
        codes = [f.__code__ for f in vars(_core).values() if hasattr(f, "__code__")]
        codes += [m.__code__ for c in vars(_core).values() if isinstance(c, type)
                  for m in vars(c).values() if hasattr(m, "__code__")]
        assert codes, "no function of the extension has a code object"
        for co in codes:
            assert co.co_flags & flags["CO_OPTIMIZED"] and co.co_flags & flags["CO_NEWLOCALS"], (co, co.co_flags)
            assert not co.co_flags & (inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR), co
        print(len(codes), sum(bool(co.co_flags & flags["CO_VARARGS"]) for co in codes),
              sum(bool(co.co_flags & flags["CO_VARKEYWORDS"]) for co in codes))
    """)
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert lines[0] == "False", child.stdout
    print(lines[1])
