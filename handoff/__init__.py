"""Handoff: match a salesperson, transfer or text them, and hold them accountable."""
