import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tiny_models

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _like_the_server():
    """ComfyUI's executor runs every node under torch.inference_mode(): so do the tests."""
    with torch.inference_mode():
        yield
