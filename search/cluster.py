"""Starting or joining Ray, and the dashboard.

A local head binds **every** listener to the loopback interface: GCS, raylet, object manager,
workers, the dashboard agent (gRPC, HTTP, metrics) and the runtime-env agent. On Linux Ray picks
the machine's address as the node IP and serves on all interfaces; it keeps to loopback only when
its "no multi-node cluster" switch is off (the macOS/Windows default,
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``). We set that switch for the Ray processes a local head
starts (they inherit the environment) and for this driver, which read it when ray was imported.
Joining a cluster (``--address``) restores it: that cluster's own bind settings apply.
The dashboard binds 127.0.0.1 unless ``--dashboard-host`` says otherwise (with a
warning: Ray's dashboard can run code on the cluster). Ray 2.60 turns token authentication on for
a new local cluster unless ``RAY_AUTH_MODE=disabled``; we leave that default alone, so opening the
dashboard asks for the token printed by ``ray get-auth-token``.

The project reaches the workers as Ray means it to: :func:`code_env` ships the repository with the
job (``runtime_env`` ``working_dir``, the virtual environment, runs, caches, Git's objects and data
files left out), so a node where the repository is not (or is at another path) runs trials; every
node needs only the same Python packages (``pip install`` of this project's pinned dependencies).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import ray
from ray._private import ray_constants

DEFAULT_DASHBOARD_HOST = "127.0.0.1"
# gitignore-style patterns left out of the job's working_dir: what the workers need is the code and
# configs; the world and logs reach the trials through the object store
CODE_EXCLUDES = [".git/", ".venv/", "venv/", "runs/", "out/", "loop/", "__pycache__/", "*.egg-info/", ".cache/",
                 ".pytest_cache/", "*.parquet", "*.npz", "*.npy", "*.pt", "*.journal", "*.json.gz"]
DASHBOARD_PORT = 8265
log = logging.getLogger("search")
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_SWITCH_AT_IMPORT = (os.environ.get(_CLUSTER_SWITCH), ray_constants.ENABLE_RAY_CLUSTER)


def loopback_only(enabled: bool) -> None:
    """Keep the Ray processes started from now on to the loopback interface (or undo that).

    ``ray._private.ray_constants.ENABLE_RAY_CLUSTER`` is Ray's own switch, read from the
    environment at import; a test starts a local search and checks the socket table.
    """
    env, constant = _SWITCH_AT_IMPORT
    if enabled:
        os.environ[_CLUSTER_SWITCH] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False
        return
    if env is None:
        os.environ.pop(_CLUSTER_SWITCH, None)
    else:
        os.environ[_CLUSTER_SWITCH] = env
    ray_constants.ENABLE_RAY_CLUSTER = constant


def init_kwargs(address: str | None, dashboard_host: str = DEFAULT_DASHBOARD_HOST,
                num_cpus: int | None = None, num_gpus: int | None = None) -> dict:
    """``ray.init`` arguments: join ``address``, or start a local head with a local dashboard."""
    if address:
        return {"address": address}  # the cluster's own dashboard settings apply
    # "local": always a new local instance — a plain ray.init() would silently join a cluster
    # left running by `ray start` on this machine (or named by RAY_ADDRESS).
    kwargs = {"address": "local", "include_dashboard": True, "dashboard_host": dashboard_host}
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    if num_gpus is not None:
        kwargs["num_gpus"] = num_gpus
    return kwargs


class _DefaultExcludesNotice(logging.Filter):
    """Drops Ray's notice that ``.git``/``.venv`` are now left out of a working_dir by default
    (:data:`CODE_EXCLUDES` leaves them out anyway): one line per folder at every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is now ignored by default" not in str(record.msg)


def code_env(repo: str | Path, env_vars: dict[str, str] | None = None) -> dict:
    """The ``runtime_env`` that ships ``repo`` (the project) to every worker of the job."""
    notices = logging.getLogger("ray._private.runtime_env.working_dir")
    if not any(isinstance(f, _DefaultExcludesNotice) for f in notices.filters):
        notices.addFilter(_DefaultExcludesNotice())
    runtime_env = {"working_dir": str(repo), "excludes": list(CODE_EXCLUDES)}
    if env_vars:
        runtime_env["env_vars"] = dict(env_vars)
    return runtime_env


def check_dashboard_host(host: str) -> str | None:
    """A warning when the dashboard would listen beyond this machine, else None."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    return (f"the Ray dashboard will listen on {host}: anyone who can reach it can submit jobs "
            "to this cluster. Prefer the default 127.0.0.1 and an SSH tunnel "
            f"(ssh -L {DASHBOARD_PORT}:127.0.0.1:{DASHBOARD_PORT} HOST).")


def _token_auth_for_join() -> None:
    """Ray 2.60 enables token auth for a new local cluster, but a driver *joining* a cluster only
    sends its token in token mode. With ``RAY_AUTH_MODE`` unset and a token at hand (``ray
    get-auth-token``), switch to token mode with the same (private) helper ``ray start`` uses."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def start(address: str | None, dashboard_host: str, num_cpus: int | None = None,
          num_gpus: int | None = None, runtime_env: dict | None = None) -> str | None:
    """Start or join Ray; print the dashboard URL; return it (None when there is no dashboard).

    ``runtime_env`` reaches every worker (the driver passes :func:`code_env`: the repository as
    the job's working directory, so workers on any node import the project from it).
    """
    loopback_only(not address)
    if address:
        _token_auth_for_join()
    warning = None if address else check_dashboard_host(dashboard_host)
    if warning:
        log.warning(warning)
        print(f"WARNING: {warning}", flush=True)
    ctx = ray.init(**init_kwargs(address, dashboard_host, num_cpus, num_gpus), runtime_env=runtime_env)
    if address:
        print(f"joined Ray cluster at {address} ({ray.cluster_resources().get('CPU', 0):g} CPUs)", flush=True)
    url = ctx.dashboard_url
    if url:
        url = url if url.startswith("http") else f"http://{url}"
        auth = os.environ.get("RAY_AUTH_MODE", "token (default)")
        print(f"Ray dashboard: {url}   (auth: {auth}; token: `ray get-auth-token`)", flush=True)
    else:
        print("Ray dashboard: not available on this cluster", flush=True)
    return url
