"""An OpenAPI-driven fuzz run (Schemathesis) against every route of the service,
bounded in examples: no 500 anywhere, every error body has ``code`` and ``message``."""
import numpy as np
import pytest

schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from jobs.api import Settings, create_app  # noqa: E402
from jobs.embed import embed_gallery  # noqa: E402
from storage import models  # noqa: E402
from storage.database import open_database  # noqa: E402
from storage.keys import create_key  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from verifier.synthetic import write_identity_set  # noqa: E402


@pytest.fixture(scope="module")
def fuzzed(trained_home, tmp_path_factory):
    import shutil

    home = tmp_path_factory.mktemp("fuzz") / "home"
    shutil.copytree(trained_home / "models", home / "models")
    ws = Workspace.open(home)
    sessions = open_database(ws.database_url)
    embed_gallery(ws, sessions, write_identity_set(home.parent / "g", 3, 2, size=32), model="tiny",
                  quiet=True)
    with sessions.begin() as s:
        models.get_model(s, "tiny").threshold = 0.5
        key = create_key(s, "fuzz", "admin")
    app = create_app(ws, sessions, Settings(model="tiny"))
    with TestClient(app):  # runs the lifespan: model and index loaded
        yield app, key


def test_no_route_answers_500(fuzzed):
    app, key = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen = []

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        seen.append((case.operation.label, response.status_code))
        assert response.status_code < 500, (case.operation.label, response.text[:300])
        if response.status_code >= 400:
            body = response.json()
            assert {"code", "message"} <= set(body), body

    for result in schema.get_all_operations():
        operation = result.ok()
        operation.as_strategy()  # every operation has a strategy
        from hypothesis import given

        given(case=operation.as_strategy())(check)()
    labels = {label for label, _ in seen}
    assert len(labels) >= 12, labels  # every route was exercised
    assert np.mean([s < 400 for _, s in seen]) > 0  # and some requests got through
