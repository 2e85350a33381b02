"""pulumi-kubernetes annotations the components set (provider/pkg/metadata/annotations.go)."""

from __future__ import annotations

# `pulumi up` waits until every replica of a StatefulSet is ready and a Service has ready endpoints;
# skipAwait turns that off for one object, timeoutSeconds changes how long it waits.
SKIP_AWAIT = "pulumi.com/skipAwait"
TIMEOUT_SECONDS = "pulumi.com/timeoutSeconds"
# Server-side apply takes the size field over from the StatefulSet controller, which created the claim.
PATCH_FORCE = "pulumi.com/patchForce"
