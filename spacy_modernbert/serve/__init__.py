"""`serve`: a pipeline behind HTTP (FastAPI + uvicorn) with micro-batching and a demo page.

`limits` and `batcher` are plain Python; `app` imports FastAPI and is imported only by the
`serve` command and its tests (`pip install "spacy-modernbert[serve]"`).
"""
