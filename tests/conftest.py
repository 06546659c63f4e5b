import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test with one torch thread: on tiny problems OpenMP start-up dominates, and the CI
    cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
