"""Custom code for `annotate --code`: a component that kills its own process once.

It stands in for an OOM kill or a lost node: the first process that sees a document
containing `trigger` creates `marker` and dies by SIGKILL (no cleanup, no exception); every
later process sees the marker and passes the documents through.
"""

import os
import signal

from spacy.language import Language


@Language.factory("annotate_test_kill_once", default_config={"marker": "", "trigger": "KILL-ME"})
def make_kill_once(nlp: Language, name: str, marker: str, trigger: str):
    def kill_once(doc):
        if marker and trigger in doc.text and not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return doc

    return kill_once
