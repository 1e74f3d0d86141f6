"""The supervisor (shim): one small process per workload that outlives the agent."""
