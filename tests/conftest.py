import pytest
from pulumi.runtime.settings import ROOT

import pulumi


@pytest.fixture(autouse=True)
def fresh_pulumi_runtime():
    """Every test starts and ends with no root stack and empty config, so no test sees resources,
    outputs or config left by another (mocks are installed anew by each program run)."""
    ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])
    yield
    ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])
