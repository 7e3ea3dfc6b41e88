"""Mail client autoconfiguration: Thunderbird's autoconfig, Outlook's autodiscover and
Apple's configuration profiles, filled from the domain's hosting server."""
