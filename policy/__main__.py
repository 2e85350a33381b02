"""The pgstack policy pack: `pulumi preview --policy-pack policy`. Builds the pack only; the rules are in rules.py."""

from pulumi_policy import PolicyPack
from rules import POLICIES

PolicyPack(name="pgstack-policy", policies=POLICIES)
