"""Helpers of the agentnet e2e harness: processes, the test IdP, the mock upstream, the CLIs."""
