"""Ray for a search: a fresh local Ray with token authentication, or a cluster joined by address. Driver side."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
from collections.abc import Iterator
from typing import TextIO

from gcsearch.errors import ConfigError


def start_ray(address: str | None, stream: TextIO, dashboard: bool = False) -> bool:
    """Join a cluster (address or RAY_ADDRESS) or start a local Ray; True if we started it.

    A local Ray runs with token authentication: its GCS, raylet and workers listen on every interface
    (Ray 2.60 binds them to the node's address and resolves 127.0.0.1 to it), and an unauthenticated GCS
    runs any job whoever reaches it submits. Each local search gets its own random token, in the
    environment only (RAY_AUTH_TOKEN, inherited by Ray's processes), so nothing is written to $HOME and
    no other user's token is reused. A RAY_AUTH_MODE or RAY_AUTH_TOKEN the user set is kept (with a
    warning for "disabled"). Joining a cluster passes the user's RAY_AUTH_MODE / token through untouched.
    No dashboard unless asked (then on 127.0.0.1 only); usage stats are off."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        return False
    if address:
        try:
            with native_stderr_held():
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except ConnectionError as err:
            raise ConfigError(
                "--address",
                f"must name a Ray cluster this machine can join ({err}); one started "
                "with token authentication needs its token here too, in RAY_AUTH_TOKEN or "
                "RAY_AUTH_TOKEN_PATH (README: a token-authenticated cluster)",
                address,
            ) from None
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        res = ray.cluster_resources()
        stream.write(
            f"joined Ray cluster at {address}: {len(nodes)} nodes, {res.get('CPU', 0):g} CPUs, "
            f"{res.get('GPU', 0):g} GPUs\n"
        )
        if not _token_given():  # a cluster with authentication refuses a client without its token
            stream.write(f"warning: the Ray cluster at {address} accepts clients without authentication: anyone who "
                         "reaches its ports can run code on it; start it with token authentication (README: a "
                         "token-authenticated cluster)\n")  # fmt: skip
        return False
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        stream.write("warning: RAY_AUTH_MODE=disabled: this machine's Ray accepts work from anyone who can reach "
                     "its ports; unset it to keep token authentication\n")  # fmt: skip
    else:
        if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        # Mode unset: ray.init then turns token authentication on itself and refreshes the config Ray
        # cached at import, which a RAY_AUTH_MODE=token set later (by us, or by an earlier ray.init of
        # this process) would not reach.
        os.environ.pop("RAY_AUTH_MODE", None)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # address="local": with no address, ray.init joins the cluster named in <tmp>/ray/ray_current_cluster
    # (the last `ray start`), and hangs for minutes when that cluster is gone (experiments/results/startup.md).
    context = ray.init(address="local", include_dashboard=dashboard, dashboard_host="127.0.0.1",
                       logging_level=logging.ERROR, log_to_driver=False)  # fmt: skip
    if dashboard:
        stream.write(f"Ray dashboard: http://{context.dashboard_url}\n")
    return True


@contextlib.contextmanager
def native_stderr_held() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null for a moment: Ray's C++ client retries a refused join (a missing
    token) for 20 s, writing a warning line to fd 2 each second, before Python hears of it; the error that
    follows is said in one line instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _token_given() -> bool:
    return os.environ.get("RAY_AUTH_MODE", "").lower() == "token" or bool(
        os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
    )
