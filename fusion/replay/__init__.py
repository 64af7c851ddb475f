"""Real-time replay of a recorded log: faults, pacing, the latest-wins mailbox and the loop."""
