"""Reusable ComponentResources; they know nothing about stacks or pulumi.Config."""
