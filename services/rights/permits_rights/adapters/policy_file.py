"""The agency policy file shipped in the package (`permits_rights/policies.yaml`)."""

from __future__ import annotations

from importlib import resources

import yaml

from permits_common.domain.agencies import Agency
from permits_rights.domain.policy import AgencyPolicy, parse_policies


def load_policies() -> dict[Agency, AgencyPolicy]:
    """Read and validate the policies; a broken file stops the service at start-up."""
    text = resources.files("permits_rights").joinpath("policies.yaml").read_text("utf-8")
    return parse_policies(yaml.safe_load(text))
