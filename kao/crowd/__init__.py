"""Crowd counting: MCNN density maps and face detection, and the rule that picks one."""

from kao.crowd.counting import CHOICES, METHODS, CrowdCount, CrowdCounter, Estimates

__all__ = ["CHOICES", "METHODS", "CrowdCount", "CrowdCounter", "Estimates"]
