"""/docs works offline (issue 26, item 7): no script, stylesheet or font from another host."""

import re

import pytest

pytest.importorskip("fastapi")


def test_docs_page_has_no_external_assets_and_lists_the_endpoints(served_nlp):
    from fastapi.testclient import TestClient

    from spacy_modernbert.serve.app import create_app
    from spacy_modernbert.serve.limits import Limits

    with TestClient(create_app(served_nlp, Limits())) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert not re.search(r"""(src|href)=["']?https?://""", page.text), (
            "an asset from another host"
        )
        for endpoint in ("POST /annotate", "GET /health", "GET /metadata"):
            assert endpoint in page.text
        assert client.get("/openapi.json").status_code == 200
