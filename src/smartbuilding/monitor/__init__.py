"""The monitor: collects the six key metrics from ``services/*/status``, evaluates alert rules, serves /metrics."""
