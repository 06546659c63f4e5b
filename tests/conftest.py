import os
from pathlib import Path

import pytest
import torch

# The library assumes no data location: the shared real data (next to the repository) is found
# through $GRAPHMTL_DATA, set here for the tests (and the subprocesses they start) when absent.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if not os.environ.get("GRAPHMTL_DATA") and SHARED_DATA.is_dir():
    os.environ["GRAPHMTL_DATA"] = str(SHARED_DATA)


@pytest.fixture
def one_thread():
    """Run a test with one torch thread: on tiny problems OpenMP start-up dominates, and the CI
    cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
