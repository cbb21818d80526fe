"""Serve a search's winner as a botify recommender: ``python -m search.serve EXPERIMENT_DIR``.

A Ray Serve application speaking botify's HTTP API (:mod:`search.service`) on 127.0.0.1:5001,
serving the best trial of a search experiment (or ``--trial ID``, or a ``search.export`` folder)
with its lists and its ``serving`` settings. An A/B inside one running service::

    python -m search.serve --control sticky_artist --treatment runs/NAME --experiment NAME

assigns users to arms with botify's rule under that experiment name. Each replica writes botify's
``data.json`` under ``--log-dir`` (one folder per replica, as botify's containers do), which
``python -m sim_bridge analyze --logs LOG_DIR --experiment NAME`` reads. Ctrl-C or SIGTERM stops
the service: replicas finish their requests and the logs are complete on disk.

Replicas keep each listener's open session (i2i anchors on it), so all of a user's requests must
reach the same replica: with ``--replicas`` > 1 they are routed by a consistent hash of the user
in the path (:class:`UserAffinityRouter`).
"""
from __future__ import annotations

import argparse
import math
import os
import pickle
import signal
import socket
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from ray import serve
from ray.serve.config import RequestRouterConfig
from ray.serve.experimental.consistent_hash_router import ConsistentHashRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from sim_bridge.contract.catalog import read_catalog
from sim_bridge.world import TRACKS_JSON

from search.errors import USER_ERRORS, report
from search.service import (LOG_FILE, Arm, ArmError, BotifyService, ServiceConfig, build_policy, resolve_arm,
                            resolve_world)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5001
APP_NAME = "botify"
REPO = Path(__file__).resolve().parent.parent


class Recommender:
    """The Ray Serve deployment: one :class:`BotifyService` per replica; HTTP in, JSON out."""

    def __init__(self, config: ServiceConfig):
        ctx = serve.get_replica_context()
        rank = ctx.rank.rank if ctx.rank is not None else 0
        self.service = BotifyService(config, replica=ctx.replica_tag, rank=rank)

    async def __call__(self, request: Request) -> JSONResponse:
        body = await request.body()
        status, payload = self.service.handle(request.method, request.url.path, body)
        return JSONResponse(payload, status_code=status)

    def __del__(self):
        # Serve calls this in a graceful shutdown, after the replica's last request.
        service = getattr(self, "service", None)
        if service is not None:
            service.close()


class UserAffinityRouter(ConsistentHashRouter):
    """Ray's consistent-hash router, keyed on the user of ``/next/<user>`` and ``/last/<user>``.

    Ray keys it on an ``x-session-id`` header; botify's clients send none, so the key comes from
    the request path. The proxy hands the router the request it serialized itself a moment
    before (Ray's own bytes, not client input). Other routes spread over the replicas.
    """

    def _routing_key(self, pending_request):
        user = user_of(pending_request)
        return f"user:{user}" if user is not None else super()._routing_key(pending_request)


def user_of(pending_request) -> str | None:
    """The ``<user>`` of a proxied ``/next/<user>`` or ``/last/<user>`` request, else None."""
    args = getattr(pending_request, "args", None)
    if not args or not isinstance(args[0], bytes):
        return None
    try:
        path = pickle.loads(args[0]).asgi_scope.get("path", "")
    except Exception:  # not an HTTP request serialized by the proxy
        return None
    parts = path.split("/")
    return parts[2] if len(parts) == 3 and parts[1] in ("next", "last") else None


def application(config: ServiceConfig, replicas: int = 1, cpus_per_replica: float = 1.0):
    """The Ray Serve application (bound, not yet running)."""
    options = {
        "num_replicas": replicas,
        "max_ongoing_requests": 256,  # short CPU-bound requests: let them queue at the replica
        "ray_actor_options": {"num_cpus": cpus_per_replica},
        "logging_config": {"enable_access_log": False},  # botify's log is the record of requests
        "graceful_shutdown_wait_loop_s": 0.5,  # how often a stopping replica checks for requests left
    }
    if replicas > 1:  # strict affinity (no fallback replica), or a session would lose its state
        options["request_router_config"] = RequestRouterConfig(
            request_router_class=UserAffinityRouter, request_router_kwargs={"num_fallback_replicas": 0})
    return serve.deployment(Recommender, name="Recommender").options(**options).bind(config)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m search.serve", description=__doc__.splitlines()[0],
                                epilog="examples:\n  python -m search.serve runs/NAME\n"
                                       "  python -m search.serve --control sticky_artist --treatment runs/NAME "
                                       "--experiment NAME", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment_dir", nargs="?", help="search experiment or search.export folder to serve")
    p.add_argument("--trial", help="trial id (default: the best finished trial)")
    p.add_argument("--control", help="A/B: policy or folder of arm C (e.g. sticky_artist)")
    p.add_argument("--treatment", action="append", default=[], help="A/B: arm T1, T2, ... (repeatable)")
    p.add_argument("--experiment", help="A/B experiment name (botify's assignment; default: abtest)")
    p.add_argument("--world", type=Path, help="world folder of the catalog (default: the search's world)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"listen address (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    p.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas (default 1)")
    p.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs Ray reserves per replica")
    p.add_argument("--log-dir", type=Path, help="botify logs, one folder per replica (default serve-logs/<time>)")
    p.add_argument("--seed", type=int, default=0, help="seed of the policies' random draws (default 0)")
    p.add_argument("--max-sessions", type=int, default=1024, help="open sessions kept per replica")
    p.add_argument("--address", help="join this Ray cluster instead of starting a local one")
    return p.parse_args(argv)


def service_config(args: argparse.Namespace) -> tuple[ServiceConfig, str]:
    """Check the arguments and resolve the arms; (config, where the catalog came from)."""
    if not 1 <= args.port <= 65535 or args.replicas < 1 or args.max_sessions < 1 or args.cpus_per_replica < 0:
        raise ArmError("--port must be in 1..65535, --replicas and --max-sessions >= 1, --cpus-per-replica >= 0")
    _check_port_free(args.host, args.port)
    arms, experiment = _arms(args)
    world, source = resolve_world(arms, args.world)
    catalog = read_catalog(world / TRACKS_JSON)  # public data only; errors name the file and line
    for arm in arms:  # fail here with one line, not in every replica
        build_policy(arm, catalog)
    log_dir = args.log_dir or Path("serve-logs") / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    if log_dir.exists() and (not log_dir.is_dir() or any(log_dir.iterdir())):
        raise ArmError(f"--log-dir {log_dir}: exists and is not empty; choose a new folder (nothing was overwritten)")
    config = ServiceConfig(tuple(arms), str(world.resolve()), str(log_dir.resolve()), experiment,
                           args.seed, args.max_sessions)
    return config, source


def _check_port_free(host: str, port: int) -> None:
    """Fail before starting Ray when the port is taken (Ray's proxy would only log the failure)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ArmError(f"--host {host} --port {port}: cannot listen there ({reason}); choose another --port") from None


def _arms(args: argparse.Namespace) -> tuple[list[Arm], str | None]:
    ab = args.control is not None or bool(args.treatment)
    if ab == (args.experiment_dir is not None):
        raise ArmError("give EXPERIMENT_DIR, or --control and --treatment for an A/B (not both)")
    if not ab:
        if args.experiment is not None:
            raise ArmError("--experiment names an A/B: use it with --control and --treatment")
        return [resolve_arm(args.experiment_dir, args.trial)], None
    if args.control is None or not args.treatment:
        raise ArmError("an A/B needs --control and at least one --treatment")
    if args.trial is not None and len(args.treatment) > 1:
        raise ArmError("--trial is ambiguous with several --treatment arms; export each trial and serve the folders")
    arms = [resolve_arm(args.control)] + [resolve_arm(t, args.trial) for t in args.treatment]
    return arms, args.experiment or "abtest"


# Ray Serve gives its HTTP proxy 5 s to report ready and 10 s to answer each health check, then
# kills it. On a busy two-core machine (a search training beside the service) the proxy needs
# longer to start, so a started local cluster gets these defaults; settings in the environment win.
PROXY_PATIENCE_S = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "60"}


# On this machine the replicas import the project from this checkout; joining a cluster ships it
# with the job (search.cluster.code_env), since other nodes need not have it.
LOCAL_ENV = {"env_vars": {"PYTHONPATH": str(REPO)}}


def start(config: ServiceConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, replicas: int = 1,
          cpus_per_replica: float = 1.0, address: str | None = None) -> None:
    """Start (or join) Ray and run the application on ``host:port``."""
    from search import cluster

    for key, value in PROXY_PATIENCE_S.items():
        os.environ.setdefault(key, value)  # read by Serve's controller, a process the new cluster starts

    warning = host_warning(host)
    if warning:
        print(f"WARNING: {warning}", flush=True)
    cpus = None if address else max(os.cpu_count() or 1, math.ceil(replicas * cpus_per_replica))
    cluster.start(address, cluster.DEFAULT_DASHBOARD_HOST, num_cpus=cpus,
                  runtime_env=cluster.code_env(REPO) if address else LOCAL_ENV)
    serve.start(http_options={"host": host, "port": port}, logging_config={"enable_access_log": False})
    deploy(config, replicas, cpus_per_replica)


def host_warning(host: str) -> str | None:
    """A warning when the service would listen beyond this machine, else None."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    return (f"the service will listen on {host}: anyone who can reach it can send requests (and fill its "
            "logs). Prefer 127.0.0.1 behind a reverse proxy or an SSH tunnel.")


def deploy(config: ServiceConfig, replicas: int = 1, cpus_per_replica: float = 1.0) -> None:
    """Run (or update) the application on the Serve instance already started."""
    serve.run(application(config, replicas, cpus_per_replica), name=APP_NAME, route_prefix="/")


class Stopper:
    """SIGINT/SIGTERM handlers: the first asks for a graceful stop (even during start-up), a second
    one interrupts (KeyboardInterrupt), for a start-up that hangs."""

    def __init__(self):
        self.signum: int | None = None
        self.event = threading.Event()
        self.install()

    def install(self) -> None:
        """(Re)install the handlers: a local Ray head installs its own SIGTERM handler on start."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()

    def wait(self) -> str:
        """Block until a stop is asked for; the signal's name."""
        while not self.event.wait(0.5):
            pass
        return signal.Signals(self.signum).name


def stop(joined: bool) -> None:
    """Graceful: delete the app (every replica finishes its requests and closes its log), then Ray.

    A local Ray goes with its processes (Serve's proxy included, without its 30 s drain: nothing
    is left to route to); a joined cluster gets Serve shut down properly.
    """
    import ray

    serve.delete(APP_NAME)
    if joined:
        serve.shutdown()
    ray.shutdown()


def count_events(log_dir: Path) -> int:
    """Lines in every replica's log under ``log_dir``."""
    return sum(sum(1 for _ in p.open("rb")) for p in log_dir.glob(f"*/{LOG_FILE}"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config, source = service_config(args)
    except (*USER_ERRORS, ValueError, OSError) as exc:
        return report(exc)
    names = ["C"] + [f"T{k}" for k in range(1, len(config.arms))]
    for name, arm in zip(names, config.arms):
        print(f"arm {name}: {arm.label}", flush=True)
    print(f"catalog: {config.world} ({source})", flush=True)
    stopper = Stopper()
    start(config, args.host, args.port, args.replicas, args.cpus_per_replica, args.address)
    stopper.install()
    log_dir = Path(config.log_dir)
    print(f"serving botify's API on http://{args.host}:{args.port} ({args.replicas} replica(s)); "
          f"logs: {log_dir}", flush=True)
    if config.experiment:
        print(f"analyze: python -m sim_bridge analyze --logs {log_dir} --experiment {config.experiment}", flush=True)
    print("Ctrl-C or SIGTERM stops it", flush=True)
    print(f"{stopper.wait()}: stopping ...", flush=True)
    stop(joined=args.address is not None)
    print(f"stopped; {count_events(log_dir)} events logged in {log_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
