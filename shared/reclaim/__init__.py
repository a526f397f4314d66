"""reclaim: event-driven enforcement of resource-recovery policies for OpenStack."""
