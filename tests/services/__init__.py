"""Real services that tests start and stop by PID: the hub and its proxy (more to come)."""
