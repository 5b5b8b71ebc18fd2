import pytest

from textdistill.data.sample import write_sample_dataset
from textdistill.progress import set_quiet


@pytest.fixture(autouse=True)
def quiet_progress():
    set_quiet(True)
    yield
    set_quiet(False)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """A small copy of the built-in email sample: hierarchical, partly multi-label."""
    return write_sample_dataset(tmp_path_factory.mktemp("sample"), seed=1, n_train=400, n_test=160, n_unannotated=50)
