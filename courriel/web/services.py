"""The web panel as a service of `courriel serve`, when `[web] enabled`.

A separate module so that a serve without the panel never imports uvicorn (4 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.config import Config

if TYPE_CHECKING:
    from courriel.web.server import WebService


def services(config: Config) -> list[WebService]:
    if not config.web.enabled:
        return []
    from courriel.runtime import bind
    from courriel.web.server import WebService

    return [WebService(config, bind(config, "web"))]
