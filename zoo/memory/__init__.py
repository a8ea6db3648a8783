"""The memory planner: estimate peak training memory per device, say whether a run fits, and
what would make it fit. Nothing here but `measure` imports torch."""
