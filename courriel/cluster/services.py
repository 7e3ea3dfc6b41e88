"""The cluster's part of `courriel serve`, when `[general] server` names this node:
registration and heartbeat first (a misconfigured node starts nothing), the
`[cluster]` LMTP listener, the domain-move worker and the sweeper of mail left
behind by moved domains."""

from __future__ import annotations

from typing import Any

from courriel.config import Config


def services(config: Config) -> list[Any]:
    from courriel.cluster.identity import clustered

    if not clustered(config):
        return []
    from courriel.cluster.heartbeat import Heartbeat
    from courriel.cluster.lmtp import NodeListener
    from courriel.cluster.mover import Mover
    from courriel.cluster.sweep import Sweeper
    from courriel.runtime import bind

    found: list[Any] = [Heartbeat(config)]
    if config.cluster.enabled:
        found.append(NodeListener(config, bind(config, "cluster")))
    found += [Mover(config), Sweeper()]
    return found
