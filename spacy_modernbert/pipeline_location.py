"""Where a PIPELINE argument lives: a pipeline directory, or an installed package's data directory.

The one rule of every command (`cli/_util.load_pipeline`) and of the annotate engines, which
load the pipeline again in each worker: a directory must hold a config.cfg; anything else must
be an installed package (`spacy.util.is_package`). Otherwise one line says so. Light: spaCy is
imported when called.
"""

from pathlib import Path
from typing import Any


class PipelineNotFound(ValueError):
    """A PIPELINE argument that is neither a pipeline directory nor an installed package."""


def find_pipeline(pipeline: Any) -> Path:
    """The directory of a pipeline given as a directory or an installed package name.

    Raises PipelineNotFound (one line) when it is neither, or a directory that is not a pipeline.
    """
    import spacy

    path = Path(str(pipeline))
    if path.exists():
        if not path.is_dir() or not (path / "config.cfg").is_file():
            raise PipelineNotFound(
                f"Pipeline {pipeline} is not a pipeline directory (no config.cfg)"
            )
        return path
    if spacy.util.is_package(str(pipeline)):
        package = spacy.util.get_package_path(str(pipeline))
        meta = package / "meta.json"
        try:
            import srsly

            data = srsly.read_json(meta)
            inner = package / f"{data['lang']}_{data['name']}-{data['version']}"
        except Exception:  # a package without the usual layout: let spacy.load find it
            return package
        return inner if inner.is_dir() else package
    raise PipelineNotFound(
        f"Pipeline not found: {pipeline} is neither a directory nor an installed package "
        "(pass a pipeline directory, or pip install the package)"
    )
