"""Greylisting inside `courriel serve`: the process-wide engine (its background
writer, reloads and purges) and the Postfix policy listener on `[policy]`."""

from __future__ import annotations

import asyncio
import sys

from courriel.config import Config
from courriel.greylist.engine import Engine, set_engine
from courriel.greylist.policy import PolicyServer
from courriel.greylist.settings import Settings


class EngineService:
    """Starts the engine our SMTP server and the policy service share."""

    name = "greylist"

    def __init__(self, settings: Settings) -> None:
        self.engine = Engine(settings)
        state = "on" if settings.enabled else "off"
        self.listening = [f"greylist: {state}, delay {int(settings.delay)} s"]

    async def start(self) -> None:
        # The background writer runs Python code too: let the event loop get the GIL
        # back within a millisecond rather than Python's default five.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        await asyncio.to_thread(self.engine.start)
        set_engine(self.engine)

    async def stop(self) -> None:
        set_engine(None)
        await self.engine.aclose()
        await asyncio.to_thread(self.engine.close)


class PolicyService:
    name = "policy"

    def __init__(self, config: Config, engines: EngineService) -> None:
        from courriel.runtime import bind

        self.sock = bind(config, "policy")
        self.server = PolicyServer(engines.engine)
        self.listening = [
            f"policy: Postfix policy service (greylisting) on {config.policy.bind}:"
            f"{config.policy.port}"
        ]

    async def start(self) -> None:
        await self.server.start(self.sock)

    async def stop(self) -> None:
        await self.server.stop()


def services(config: Config) -> list[EngineService | PolicyService]:
    engines = EngineService(Settings.from_config(config))
    if not config.policy.enabled:
        return [engines]
    return [engines, PolicyService(config, engines)]
